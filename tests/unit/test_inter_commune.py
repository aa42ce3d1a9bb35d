"""Dossiers handled by another commune: reception counts go to the receiving commune, timeliness to the handling one.

The simulator hands a configurable share of accepted dossiers to another
commune. The worker's counters, run over the simulated events, must put
``received`` under the commune on the events and ``resolved``, the on-time
classes and the backlog under the handling commune. The expected values are
counted from the events by ``producers.sim_expect`` and from the simulator's
own plan (which dossiers it made late), never by the worker's code.
"""

from collections import Counter
from datetime import date, timedelta

import pytest

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.workcal import default_calendar
from producers.sim_expect import dossier_facts, expected_backlog, expected_received, expected_resolved
from producers.simulator import Simulation, SimulationConfig, SimulationError, simulate
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.processor import Processor

CFG = SimulationConfig(communes=6, dossiers=1500, seed=4242, start=date(2026, 11, 2), days=10,
                       inter_commune_share=0.3)


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


@pytest.fixture(scope="module")
def run():
    sim = Simulation(CFG)
    evs = list(sim.events())
    proc = Processor(Evaluator(default_calendar(), default_catalogue()), Clock("event", allowed_lateness=timedelta(0)))
    store = DictStore()
    for offset, e in enumerate(evs):
        fx = proc.on_event(0, offset, events.encode(e), store)
        assert not fx.dead_letters, fx.dead_letters
    return sim, evs, proc


def throughput(proc: Processor, measure: str) -> Counter:
    out: Counter = Counter()
    for counts in proc.counters.counts.values():
        for key, n in counts.items():
            if key[0] == "throughput" and key[1] == "d" and key[6] == measure:
                out[key[3]] += n
    return +out


def by_commune(proc: Processor, family: str, index: int, where: dict[int, object] | None = None) -> Counter:
    out: Counter = Counter()
    for counts in proc.counters.counts.values():
        for key, n in counts.items():
            if key[0] == family and all(key[i] == v for i, v in (where or {}).items()):
                out[key[index]] += n
    return +out


def test_the_simulator_hands_the_configured_share_to_another_commune(run):
    sim, evs, _ = run
    facts = [f for f in dossier_facts(evs).values() if f.accepted]
    elsewhere = [f for f in facts if f.handling != f.receiving]
    assert abs(len(elsewhere) / len(facts) - 0.3) < 0.05
    assert len(elsewhere) == sim.stats.handled_elsewhere
    simulated = {c.code for c in sim.communes}
    assert all(f.handling in simulated for f in elsewhere)
    # The receipt names the handling commune, and so does every later event of the dossier.
    accepted_at = {e.dossier_id: e.seq for e in evs if e.event_type.value == "accepted"}
    for e in evs:
        if e.dossier_id in accepted_at and e.seq < accepted_at[e.dossier_id]:
            assert e.handling_commune_code is None


def test_received_counts_go_to_the_receiving_commune(run):
    _, evs, proc = run
    assert throughput(proc, "received") == expected_received(evs)


def test_resolved_counts_and_the_backlog_go_to_the_handling_commune(run):
    _, evs, proc = run
    resolved = expected_resolved(evs)
    assert throughput(proc, "resolved") == resolved
    assert by_commune(proc, "ontime", 3, {1: "mo"}) == resolved
    assert by_commune(proc, "backlog", 1) == expected_backlog(evs)
    # The test means something only if the two attributions differ.
    by_receiving = Counter(f.receiving for f in dossier_facts(evs).values() if f.resolved)
    assert by_receiving != resolved


def test_late_dossiers_count_as_overdue_for_the_handling_commune(run):
    sim, evs, proc = run
    facts = dossier_facts(evs)
    planned_late = Counter(facts[d].handling for d in sim.stats.overdue_ids if d in facts and facts[d].resolved)
    assert planned_late and by_commune(proc, "ontime", 3, {1: "mo", 6: "overdue"}) == planned_late


def test_alerts_name_the_handling_commune_and_the_receiving_one(run):
    _, evs, _ = run
    facts = dossier_facts(evs)
    proc = Processor(Evaluator(default_calendar(), default_catalogue()), Clock("event", allowed_lateness=timedelta(0)))
    store, alerts = DictStore(), []
    for offset, e in enumerate(evs):
        alerts += proc.on_event(0, offset, events.encode(e), store).alerts
    handed = [a for a in alerts if facts[a.dossier_id].handling != facts[a.dossier_id].receiving]
    assert handed
    assert all((a.commune_code, a.receiving_commune_code) ==
               (facts[a.dossier_id].handling, facts[a.dossier_id].receiving) for a in handed)


def test_a_share_of_zero_and_a_single_commune_hand_nothing_over():
    for cfg in (SimulationConfig(communes=4, dossiers=300, seed=5, inter_commune_share=0),
                SimulationConfig(communes=1, dossiers=300, seed=5, inter_commune_share=1)):
        assert all(e.handling_commune_code is None for e in simulate(cfg))
    with pytest.raises(SimulationError, match="inter_commune_share"):
        SimulationConfig(inter_commune_share=1.5)
