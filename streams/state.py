"""The worker's access to the per-dossier state table, a batch of records at a time.

The state lives in a Faust table (RocksDB, one database per partition, backed
by a compacted changelog topic). Faust's own write path, ``table[key] = value``,
sends one changelog record per write through its producer buffer. At this
worker's rates that costs more CPU than everything else it does. So the
worker writes the table the way Faust's *recovery* does:

1. while a batch of records is processed, new dossier states are held in
   ``BatchState`` (a dossier written twice in a batch is written once);
2. the held states go to the changelog as one record batch per partition
   (``streams.outbox``), and the worker waits until Kafka acknowledges them;
3. only then are they applied to RocksDB, together with the changelog offset
   they reached (``Store.apply_changelog_batch``, the call Faust's recovery
   makes), and only after that are the input records acknowledged.

So the changelog always holds at least what RocksDB holds, and RocksDB at least
what the committed input offsets promise. A crash at any point replays input
records whose effects are idempotent. Recovery, standby replicas and rebalances
stay Faust's.

Reads go straight to the record's partition database. Records are keyed by
dossier_id and co-partitioned with the changelog, so a dossier lives in the
partition of its records (Faust's read path does the same inside stream
context, through the current event).
"""

from __future__ import annotations

from typing import Any

from faust.types import TP


class _Message:
    __slots__ = ("tp", "topic", "partition", "offset", "key", "value")

    def __init__(self, tp: TP, offset: int, key: bytes, value: bytes) -> None:
        self.tp, self.topic, self.partition, self.offset = tp, tp.topic, tp.partition, offset
        self.key, self.value = key, value


class _ChangelogEvent:
    """What ``Store.apply_changelog_batch`` reads of a changelog event."""

    __slots__ = ("key", "value", "message")

    def __init__(self, message: _Message) -> None:
        self.key, self.value, self.message = message.key, message.value, message


def _same(x: Any) -> Any:
    return x


class TableState:
    """Reads by partition from the table's store, and applies acknowledged changelog batches to it."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.changelog = table.changelog_topic.get_topic_name()

    def get(self, partition: int, key: bytes) -> bytes | None:
        store = self.table.data
        db_for = getattr(store, "_db_for_partition", None)  # RocksDB: one database per partition
        if db_for is not None:
            return db_for(partition).get(key)
        return store.get(key)  # in-memory store (unit tests): one dict

    def apply(self, writes: dict[int, dict[bytes, bytes]], last_offsets: dict[int, int]) -> None:
        """Apply ``writes`` (partition → key → value), written to the changelog in this order, whose last
        records reached ``last_offsets`` (partition → offset)."""
        batch = []
        for partition, items in writes.items():
            if not items:
                continue
            tp = TP(self.changelog, partition)
            offset = last_offsets[partition] - len(items) + 1
            for key, value in items.items():
                batch.append(_ChangelogEvent(_Message(tp, offset, key, value)))
                offset += 1
        if batch:
            self.table.data.apply_changelog_batch(batch, to_key=_same, to_value=_same)


class PartitionView:
    """One partition of a ``BatchState``: the ``Store`` a ``Processor`` reads and writes."""

    __slots__ = ("partition", "held", "state")

    def __init__(self, partition: int, held: dict[bytes, bytes], state: TableState) -> None:
        self.partition, self.held, self.state = partition, held, state

    def get(self, key: bytes) -> bytes | None:
        value = self.held.get(key)
        return value if value is not None else self.state.get(self.partition, key)

    def set(self, key: bytes, value: bytes) -> None:
        self.held[key] = value


class BatchState:
    """Dossier states written while one batch of records is processed, held per partition."""

    def __init__(self, state: TableState) -> None:
        self.state = state
        self.writes: dict[int, dict[bytes, bytes]] = {}
        self._views: dict[int, PartitionView] = {}

    def view(self, partition: int) -> PartitionView:
        view = self._views.get(partition)
        if view is None:
            view = self._views[partition] = PartitionView(partition, self.writes.setdefault(partition, {}), self.state)
        return view

    def __len__(self) -> int:
        return sum(len(w) for w in self.writes.values())
