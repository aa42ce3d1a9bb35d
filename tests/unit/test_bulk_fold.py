"""The bulk fold of rebuild and reconcile: the worker's processor, its counts taken once at the end.

The reference is the worker's own path, record by record: a ``Processor`` whose counters move at
every record, over the same simulated events. The bulk fold must end with the same counts, the
same alerts and the same dossier states.
"""

from __future__ import annotations

import itertools
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from onestop import events
from onestop.settings import Settings
from ops.bulk_fold import BulkFold
from producers.simulator import SimulationConfig, simulate
from streams.build import build_processor
from streams.model import decode_stored
from streams.published import dossier_record

PARTITIONS = 4


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


@pytest.fixture(scope="module")
def records() -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of a small simulated province, keyed by dossier as Kafka would."""
    evs = list(itertools.islice(simulate(SimulationConfig(communes=5, dossiers=400, seed=7, days=21)), 3000))
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    out = []
    for e in evs:
        p = zlib.crc32(e.dossier_id.encode()) % PARTITIONS
        out.append((p, offsets[p], events.encode(e)))
        offsets[p] += 1
    out.append((0, offsets[0], b"{not json"))
    late = events.decode(out[0][2])
    ahead = events.encode(events.DossierEvent(**{**{f: getattr(late, f) for f in late.__struct_fields__},
                                                 "event_id": "ahead", "dossier_id": "AHEAD",
                                                 "occurred_at": datetime.now(timezone.utc) + timedelta(days=99)}))
    out.append((1, offsets[1], ahead))
    return out


SETTINGS = Settings(clock="event")
RECEIVED = datetime.now(timezone.utc)


def test_the_bulk_fold_ends_as_the_worker_does(records):
    worker, stores, alerts = build_processor(SETTINGS), {p: DictStore() for p in range(PARTITIONS)}, []
    for p, offset, raw in records:
        alerts += worker.on_event(p, offset, raw, stores[p], received_at=RECEIVED).alerts

    bulk = BulkFold(SETTINGS, range(PARTITIONS))
    for p, offset, raw in records:
        event = bulk.admit(raw, RECEIVED)
        if event is not None:
            bulk.fold(p, offset, raw, event, RECEIVED)
    bulk.count()

    want = {}
    for counts in worker.counters.counts.values():
        for key, n in counts.items():
            if n:
                want[key] = want.get(key, 0) + n
    assert bulk.counts() == want and len(want) > 100
    assert [a.alert_id for a in bulk.take_alerts()] == [a.alert_id for a in alerts] and alerts
    worker_dossiers = {r.dossier_id: r for s in stores.values() for v in s.values()
                       if (r := dossier_record(decode_stored(v), worker.evaluator)) is not None}
    assert {r.dossier_id: r for r in bulk.dossier_records()} == worker_dossiers
    assert bulk.refused == 2 and bulk.failed == 0


def test_counter_batches_carry_one_version_that_is_also_the_epoch(records):
    bulk = BulkFold(SETTINGS, range(PARTITIONS + 1))  # the last partition has no event: it still announces
    for p, offset, raw in records[:500]:
        event = bulk.admit(raw, RECEIVED)
        if event is not None:
            bulk.fold(p, offset, raw, event, RECEIVED)
    batches = bulk.counter_batches(version=123)
    assert {b.source_partition for b in batches} == set(range(PARTITIONS + 1))
    assert {(b.version, b.epoch) for b in batches} == {(123, 123)}
    assert [b.rows for b in batches if b.source_partition == PARTITIONS] == [[]]
    assert sum(row[-1] for b in batches for row in b.rows) == sum(bulk.counts().values())
