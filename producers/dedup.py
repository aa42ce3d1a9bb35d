"""The gateway's memory of recent event_ids: a bounded LRU, saved across restarts.

Commune systems retry: a timeout on their side means they send the same event
again. The gateway answers a repeated ``event_id`` as a *duplicate* and does
not publish it a second time. The memory is bounded (least recently seen ids
are forgotten first) and per process, so it is an optimisation, not the
guarantee: the stream worker's fold ignores a second copy of an ``event_id``
and ClickHouse's ``dossier_events`` is a ReplacingMergeTree keyed by it, so a
repeat that slips past (after eviction, or through another gateway replica)
changes nothing downstream.

Each id is remembered with a digest of the event it named, so that a
*different* event reusing an id is told apart from a retry (``conflict``).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from enum import Enum
from pathlib import Path
from typing import Iterable


class Seen(str, Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class RecentEvents:
    """Thread-safe LRU of ``event_id -> digest``; ``claim`` reserves an id before it is published."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def claim(self, event_id: str, digest: str) -> Seen:
        """Remember ``event_id`` if it is new; say whether it was new, a retry or a conflicting reuse.

        Claiming before publishing means two concurrent requests carrying the
        same event cannot both publish it. ``release`` undoes a claim whose
        publication failed, so the client's retry is not taken for a duplicate.
        """
        with self._lock:
            known = self._ids.get(event_id)
            if known is not None:
                self._ids.move_to_end(event_id)
                return Seen.DUPLICATE if known == digest else Seen.CONFLICT
            self._ids[event_id] = digest
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)
            return Seen.NEW

    def release(self, event_ids: Iterable[str]) -> None:
        with self._lock:
            for event_id in event_ids:
                self._ids.pop(event_id, None)

    def save(self, path: Path) -> None:
        """Write the memory atomically (temporary file, then rename), oldest first."""
        with self._lock:
            items = list(self._ids.items())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def load(self, path: Path) -> int:
        """Load what ``save`` wrote; a missing or unreadable file leaves the memory empty. Returns the count."""
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        with self._lock:
            for pair in items if isinstance(items, list) else ():
                if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
                    self._ids[pair[0]] = pair[1]
                    self._ids.move_to_end(pair[0])
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)
            return len(self._ids)
