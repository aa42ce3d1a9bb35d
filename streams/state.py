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
   they reached, as Faust's recovery applies a changelog batch
   (``Store.apply_changelog_batch``: one write batch per partition database,
   then ``set_persisted_offset``), and only after that are the input records
   acknowledged.

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

import logging
from typing import Any, Callable, Iterable

from faust.types import TP

log = logging.getLogger(__name__)

try:
    import rocksdict
except ImportError:  # pragma: no cover - the worker's extra installs it
    rocksdict = None  # type: ignore[assignment]


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


OFFSET_KEY = b"\x00input-offset"  # in each partition: the last input offset whose effects the table holds


class OffsetGuard:
    """Input records of a partition are folded in offset order, each once, none skipped.

    Kafka redelivers after a crash or a rebalance, which the fold absorbs. But the consumer can also
    *skip* a record: when a rebalance suspends the flow, Faust drops and acknowledges the records
    already on their way to the stream, and the offset commit that ends the revocation takes them
    along. The next owner of the partition then starts past them. The table stores, per partition,
    the last input offset whose effects it holds (``OFFSET_KEY``, written in the same changelog batch
    as those effects), so such a gap shows: ``gaps`` names the missing offsets of a batch, the worker
    reads them itself, folds them first, and marks them acknowledged in Faust's consumer (which may
    have dropped them from its queues without acknowledging them: then its commits would stop short
    of them for good).
    """

    def __init__(self) -> None:
        self.expected: dict[int, int] = {}  # partition → next offset to fold
        self.filled = 0  # records read again to fill gaps

    def reset(self, stored: dict[int, int | None]) -> None:
        self.expected = {p: offset + 1 for p, offset in stored.items() if offset is not None}

    def gaps(self, offsets: Iterable[tuple[int, int]]) -> list[tuple[int, int, int]]:
        """(partition, first missing, first present) for each gap before a record of ``offsets``."""
        running = dict(self.expected)
        out = []
        for partition, offset in offsets:
            want = running.get(partition)
            if want is not None and offset > want:
                out.append((partition, want, offset))
            if want is None or offset >= want:
                running[partition] = offset + 1
        return out

    def admit(self, partition: int, offset: int) -> bool:
        """True if the record is next (fold it); False if the table already holds its effects."""
        want = self.expected.get(partition)
        if want is not None and offset < want:
            return False
        self.expected[partition] = offset + 1
        return True


class TableState:
    """Reads by partition from the table's store, and applies acknowledged changelog batches to it."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.changelog = table.changelog_topic.get_topic_name()

    def _partition_db(self, partition: int) -> Any | None:
        db_for = getattr(self.table.data, "_db_for_partition", None)  # RocksDB: one database per partition
        return db_for(partition) if db_for is not None else None

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.reader(partition)(key)

    def reader(self, partition: int) -> Callable[[bytes], bytes | None]:
        """A function reading one partition (resolve it once per batch: the database may change on a rebalance)."""
        db = self._partition_db(partition)
        return db.get if db is not None else self.table.data.get  # in-memory store (unit tests): one dict

    def apply(self, writes: dict[int, dict[bytes, bytes]], last_offsets: dict[int, int]) -> None:
        """Apply ``writes`` (partition → key → value), written to the changelog in this order, whose last
        records reached ``last_offsets`` (partition → offset)."""
        store = self.table.data
        if rocksdict is not None and getattr(store, "use_rocksdict", False):
            # What Store.apply_changelog_batch does, without an event object per record: one write
            # batch per partition database, then the changelog offset it reached.
            for partition, items in writes.items():
                if items:
                    batch = rocksdict.WriteBatch(raw_mode=True)
                    for key, value in items.items():
                        batch.put(key, value)
                    self._partition_db(partition).write(batch)
                    store.set_persisted_offset(TP(self.changelog, partition), last_offsets[partition])
            return
        events = []
        for partition, items in writes.items():
            tp = TP(self.changelog, partition)
            offset = last_offsets.get(partition, 0) - len(items) + 1
            for key, value in items.items():
                events.append(_ChangelogEvent(_Message(tp, offset, key, value)))
                offset += 1
        if events:
            store.apply_changelog_batch(events, to_key=_same, to_value=_same)


class PartitionView:
    """One partition of a ``BatchState``: the ``Store`` a ``Processor`` reads and writes."""

    __slots__ = ("partition", "held", "read")

    def __init__(self, partition: int, held: dict[bytes, bytes], state: TableState) -> None:
        self.partition, self.held, self.read = partition, held, state.reader(partition)

    def get(self, key: bytes) -> bytes | None:
        value = self.held.get(key)
        return value if value is not None else self.read(key)

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
