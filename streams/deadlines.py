"""The deadline index: when to look at which open dossier again, per partition.

A heap of (instant, dossier_id) per partition, with the latest scheduled
instant of each dossier so superseded entries are skipped. It is a derived
index kept in memory and rebuilt from the state table on assignment; nothing
scans all dossiers to find the overdue ones.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from datetime import datetime


class DeadlineIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        self._when: dict[int, dict[str, datetime]] = defaultdict(dict)

    def schedule(self, partition: int, dossier_id: str, when: datetime | None) -> None:
        if when is None:
            self._when[partition].pop(dossier_id, None)
            return
        if self._when[partition].get(dossier_id) == when:
            return
        self._when[partition][dossier_id] = when
        heapq.heappush(self._heaps[partition], (when, dossier_id))

    def due(self, partition: int, now: datetime) -> list[str]:
        """Pop every dossier whose scheduled instant is at or before ``now``."""
        return [dossier_id for _, dossier_id in self.pop_due(partition, now)]

    def pop_due(self, partition: int, now: datetime) -> list[tuple[datetime, str]]:
        """Pop every (instant, dossier) scheduled at or before ``now``."""
        heap, when = self._heaps.get(partition), self._when.get(partition)
        out: list[tuple[datetime, str]] = []
        while heap and heap[0][0] <= now:
            at, dossier_id = heapq.heappop(heap)
            if when is not None and when.get(dossier_id) == at:
                del when[dossier_id]
                out.append((at, dossier_id))
        return out

    def when(self, partition: int, dossier_id: str) -> datetime | None:
        return self._when[partition].get(dossier_id) if partition in self._when else None

    def restore(self, partition: int, dossier_id: str, when: datetime | None) -> None:
        """Put an entry back as it was (undoing a schedule or a pop)."""
        if when is None:
            self._when[partition].pop(dossier_id, None)
            return
        self._when[partition][dossier_id] = when
        heapq.heappush(self._heaps[partition], (when, dossier_id))

    def next_at(self, partition: int) -> datetime | None:
        heap = self._heaps.get(partition)
        return heap[0][0] if heap else None

    def forget(self, partitions: set[int] | list[int]) -> None:
        for p in partitions:
            self._heaps.pop(p, None)
            self._when.pop(p, None)

    def __len__(self) -> int:
        return sum(len(w) for w in self._when.values())
