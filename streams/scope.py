"""One record's effects, kept apart until the record is done.

A record moves several things: dossier states, counter contributions, the
deadline index, the partition's clock, and what must leave the worker (alerts,
dead letters). If processing raises half-way, none of it may stay: otherwise a
dossier could remember an alert id as sent while the alert itself was dropped,
and the record would be both applied and dead-lettered. So the processor works
on a ``RecordScope``: reads see the record's own writes first, and everything
is applied at once by ``commit`` or dropped whole when the scope is abandoned.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from streams.model import StoredDossier


class Store(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def set(self, key: bytes, value: bytes) -> None: ...


class RecordScope:
    """The ``Store`` a processor reads and writes while it handles one record."""

    __slots__ = ("store", "partition", "writes", "moves", "saved", "undo")

    def __init__(self, store: Store, partition: int) -> None:
        self.store = store
        self.partition = partition
        self.writes: dict[bytes, bytes] = {}
        self.moves: list[tuple[StoredDossier | None, StoredDossier]] = []  # counter contributions, in order
        self.saved: dict[str, StoredDossier] = {}  # dossier id → its latest state in this record
        # The deadline index is changed at once (the record's own later steps read it); this says how to
        # put it back: (dossier id, the instant it was scheduled at before), oldest first.
        self.undo: list[tuple[str, datetime | None]] = []

    def get(self, key: bytes) -> bytes | None:
        value = self.writes.get(key)
        return value if value is not None else self.store.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def save(self, before: StoredDossier | None, after: StoredDossier, encoded: bytes) -> None:
        self.moves.append((before, after))
        self.saved[after.state.dossier_id] = after
        self.writes[after.state.dossier_id.encode()] = encoded
