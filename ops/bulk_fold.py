"""``dossier.events`` folded in bulk by the worker's own ``Processor``, without Faust.

``onestop rebuild`` (records read from Kafka, ``ops.rebuild``) and ``onestop
reconcile`` (events read back from ClickHouse, ``ops.reconcile``) hand every
event to a ``Processor`` built exactly as the worker builds it
(``streams.build``), partition by partition in offset order, with one dict
store per partition where the worker has its RocksDB table. So they judge
with the same calendars, catalogue, SLA policy, event clock and admission
rules, and decide the same dossier states and the same alerts.

Two things are cheaper than in the worker, with the same result:

- counters are not moved at every record: they are counted once from the
  final dossiers (``streams.counters.BulkCounters``), as the worker recounts
  them after a recovery;
- nothing is published: the caller turns the alerts, the final dossiers and
  the counts into rows (``sinks.rows``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable, Iterator

from onestop import events
from onestop.admission import admit, receipt_time
from onestop.settings import Settings
from onestop.wire import Alert, CounterBatch, DossierRecord
from streams.build import build_processor
from streams.counters import BulkCounters
from streams.model import StoredDossier, decode_stored
from streams.published import dossier_record

log = logging.getLogger(__name__)

COUNTER_CHUNK = 5000  # counter rows per CounterBatch


class PartitionStore(dict):
    """One partition's dossiers, as the worker's table holds them (encoded ``StoredDossier``)."""

    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


class BulkFold:
    """The worker's fold over the records of some partitions of ``dossier.events``."""

    def __init__(self, settings: Settings, partitions: Iterable[int] = ()) -> None:
        """``partitions``: those whose counts are announced even when no event of theirs is folded."""
        self.processor = build_processor(settings, counters=BulkCounters())
        self.stores = {p: PartitionStore() for p in sorted(set(partitions))}
        self.alerts: list[Alert] = []
        self.refused = 0  # records that break the contract or admission (the worker dead-letters them)
        self.failed = 0  # records the processor raised on (the worker dead-letters them as processing_error)

    def admit(self, raw: bytes, received_at: datetime | None) -> events.DossierEvent | None:
        """The record's event if it meets the contract and the worker's admission rules, else None."""
        try:
            event = events.decode(raw)
        except events.ContractError:
            self.refused += 1
            return None
        wall = self.processor.clock.wall_now()
        if admit(event, self.processor.admission, received_at=receipt_time(received_at, wall), decoded=True):
            self.refused += 1
            return None
        return event

    def fold(self, partition: int, offset: int, raw: bytes, event: events.DossierEvent,
             received_at: datetime | None = None) -> None:
        """Fold one admitted event of ``partition`` (records of a partition in offset order)."""
        store = self.stores.get(partition)
        if store is None:
            store = self.stores[partition] = PartitionStore()
        try:
            fx = self.processor.on_event(partition, offset, raw, store, received_at=received_at, admitted=event)
        except Exception as exc:  # a defect, not bad input: the processor dropped everything the record did
            self.failed += 1
            log.warning("%s[%d]@%d could not be processed: %s: %s", "dossier.events", partition, offset,
                        type(exc).__name__, exc)
            return
        if fx.alerts:
            self.alerts += fx.alerts

    def take_alerts(self) -> list[Alert]:
        alerts, self.alerts = self.alerts, []
        return alerts

    # --- what the fold ends with ----------------------------------------------------------

    @property
    def partitions(self) -> list[int]:
        return sorted(self.stores)

    def stored(self) -> Iterator[StoredDossier]:
        for store in self.stores.values():
            for key, value in store.items():
                if not key.startswith(b"\x00"):
                    yield decode_stored(value)

    def dossier_records(self) -> Iterator[DossierRecord]:
        """What ``dossier.state`` says last of every dossier (as the worker publishes it)."""
        judge = self.processor.evaluator
        for stored in self.stored():
            record = dossier_record(stored, judge)
            if record is not None:
                yield record

    def counter_batches(self, version: int) -> list[CounterBatch]:
        """The counts of every partition, as the worker publishes them after a rebuild of its counters:
        one ``version`` that is also the partition's epoch, so any older row of the partition is void."""
        counters = self.processor.counters
        counters.rebuild(self.stored(), set(self.partitions))
        batches = []
        for p in self.partitions:
            rows = [(*key, n) for key, n in counters.counts.get(p, {}).items() if n]
            as_of = self.processor.clock.now(p)
            for i in range(0, max(len(rows), 1), COUNTER_CHUNK):  # an empty partition still announces its epoch
                batches.append(CounterBatch(source_partition=p, version=version, epoch=version, as_of=as_of,
                                            rows=rows[i:i + COUNTER_CHUNK]))
        return batches

    def counts(self) -> dict[tuple, int]:
        """Counter key → count, added up over the partitions (after ``counter_batches`` or ``count``)."""
        out: dict[tuple, int] = {}
        for counts in self.processor.counters.counts.values():
            for key, n in counts.items():
                if n:
                    out[key] = out.get(key, 0) + n
        return out

    def count(self) -> None:
        self.processor.counters.rebuild(self.stored(), set(self.partitions))
