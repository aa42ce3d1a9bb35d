"""The worker's practice counters: moved event by event, they add up to a recount of the raw events.

The recount (``onestop.practices.recount``) folds every dossier from scratch; the worker moves
each dossier's contributions as its events arrive (in arrival order, out of occurred order for
flaky communes, with redeliveries), after ratings that come weeks after the finish, and after a
rebuild from its state table.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

import pytest

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.practices import recount
from onestop.workcal import default_calendar
from producers.simulator import Simulation, SimulationConfig
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored
from streams.processor import Processor

FAMILIES = ("sameday", "service", "satisfaction")
PARTITIONS = 4
CFG = SimulationConfig(communes=10, dossiers=2500, seed=17, start=date(2026, 11, 2), days=21, rating_rate=0.4,
                       flaky_network_share=0.3, no_appointment_share=0.5, weekend_service_share=0.2,
                       village_service_share=0.2)


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def practice_totals(proc: Processor) -> Counter:
    out: Counter = Counter()
    for counts in proc.counters.counts.values():
        for key, n in counts.items():
            if key[0] in FAMILIES and n:
                out[key] += n
    return +out


@pytest.fixture(scope="module")
def run():
    sim = Simulation(CFG)
    deliveries = list(sim.deliveries())
    evaluator = Evaluator(default_calendar(), default_catalogue())
    proc = Processor(evaluator, Clock("event", allowed_lateness=timedelta(minutes=5)), sim.service)
    stores = {p: DictStore() for p in range(PARTITIONS)}
    rng = random.Random(3)
    offsets = Counter()
    raws = [events.encode(d.event) for d in deliveries]
    for i, (d, raw) in enumerate(zip(deliveries, raws)):
        p = hash(d.event.dossier_id) % PARTITIONS
        proc.on_event(p, offsets[p], raw, stores[p])
        offsets[p] += 1
        if rng.random() < 0.05:  # at-least-once: an earlier record again
            j = rng.randrange(i + 1)
            q = hash(deliveries[j].event.dossier_id) % PARTITIONS
            proc.on_event(q, offsets[q], raws[j], stores[q])
            offsets[q] += 1
    return sim, [d.event for d in deliveries], evaluator, proc, stores


def test_the_worker_counts_what_a_recount_of_the_raw_events_gives(run):
    sim, evs, evaluator, proc, _ = run
    expected = +recount(evs, sim.service, evaluator.resolved_outcome)
    got = practice_totals(proc)
    assert got == expected
    assert {k[0] for k in got} == set(FAMILIES)
    assert any(k[0] == "satisfaction" and k[3] == "rated" for k in got)


def test_a_rebuild_from_the_state_table_gives_the_same_counters(run):
    sim, _, evaluator, proc, stores = run
    fresh = Processor(evaluator, Clock("event"), sim.service)
    stored = [decode_stored(v) for store in stores.values() for k, v in store.items() if not k.startswith(b"\x00")]
    fresh.rebuild(stored, set(range(PARTITIONS)))
    assert practice_totals(fresh) == practice_totals(proc)


def test_each_dossier_keeps_the_reception_judged_at_acceptance(run):
    sim, evs, _, _, stores = run
    stored = [decode_stored(v) for store in stores.values() for k, v in store.items() if not k.startswith(b"\x00")]
    accepted = {e.dossier_id: e for e in evs if e.event_type is events.EventType.ACCEPTED}
    assert stored and all((s.reception is not None) == (s.state.dossier_id in accepted) for s in stored)
    for s in stored:
        if s.reception is not None:
            assert s.reception.calendar_version == sim.service.version
            assert s.reception.point == accepted[s.state.dossier_id].reception_point.value


def test_a_rating_weeks_after_the_finish_moves_only_the_satisfaction_counters(run):
    sim, evs, evaluator, proc, stores = run
    finished = next(e for e in evs if e.event_type is events.EventType.RESULT_RETURNED
                    and not any(x.dossier_id == e.dossier_id and x.seq > e.seq for x in evs))
    p = hash(finished.dossier_id) % PARTITIONS
    before = practice_totals(proc)
    stored_before = decode_stored(stores[p][finished.dossier_id.encode()])
    late = events.DossierEvent(
        event_id="late-rating", event_type=events.EventType.RATED, dossier_id=finished.dossier_id,
        seq=finished.seq + 1, occurred_at=finished.occurred_at + timedelta(days=20), commune_code=finished.commune_code,
        procedure_code=finished.procedure_code, channel=finished.channel,
        rating=events.Rating(score=1, complaint=True, via="online"))
    proc.on_event(p, 10**6, events.encode(late), stores[p])
    after = practice_totals(proc)
    stored_after = decode_stored(stores[p][finished.dossier_id.encode()])
    assert stored_after.outcome == stored_before.outcome and stored_after.state.status == 10
    changed = {k for k in set(before) | set(after) if before[k] != after[k]}
    assert changed and all(k[0] == "satisfaction" for k in changed)
    assert {k[3] for k in changed} <= {"complaint_or_bad_rating", "rated"}
