"""The simulator's service practices, ratings and flaky networks, checked against the simulated events.

Expected counts are computed here from the raw events with nothing but the standard library
(no domain measure code), then compared with the domain's measures over the same events.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter, defaultdict
from datetime import date, time
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.events import EventType
from onestop.practices import missed_promises, recount, same_day_table
from onestop.settings import Settings
from onestop.sla import classify
from onestop.workcal import WorkCalendar
from producers.run import run_simulation
from producers.sim_practices import ON_THE_SPOT
from producers.simulator import Simulation, SimulationConfig, SimulationError, simulate

E = EventType
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
# 2 Nov 2026 is a Monday; the three weeks hold one holiday, Tue 24 Nov (Vietnam Cultural Day):
# every Thursday (5, 12, 19 Nov) and Saturday (7, 14, 21 Nov) of the period is an ordinary one.
PERIOD = dict(start=date(2026, 11, 2), days=21)
PRACTICES = dict(no_appointment_share=0.5, weekend_service_share=0.25, village_service_share=0.25)
CFG = SimulationConfig(communes=12, dossiers=4000, seed=21, **PERIOD, **PRACTICES)


@pytest.fixture(scope="module")
def run():
    sim = Simulation(CFG)
    return sim, list(sim.events())


def test_a_default_run_emits_exactly_what_it_did_before_practices_existed():
    # The SHA-256 of this configuration's events as written by the simulator before service practices,
    # ratings and networks were modelled (with the inter-commune share and the admission rules, without
    # the practices). The new behaviours are off by default.
    cfg = SimulationConfig(communes=5, dossiers=300, seed=11, start=date(2026, 11, 2), days=10)
    digest = hashlib.sha256(b"\n".join(events.encode(e) for e in simulate(cfg))).hexdigest()
    assert digest == "474f8983116af757bf2310c12e4dff12dd3bb81171bd255d2a507854202b826c"


def test_ratings_only_add_rating_events():
    base = SimulationConfig(communes=6, dossiers=800, seed=4, **PERIOD)
    plain = [events.encode(e) for e in simulate(base)]
    rated_run = list(simulate(SimulationConfig(communes=6, dossiers=800, seed=4, rating_rate=0.5, **PERIOD)))
    ratings = [e for e in rated_run if e.event_type is E.RATED]
    assert [events.encode(e) for e in rated_run if e.event_type is not E.RATED] == plain
    returned = {e.dossier_id: e for e in rated_run if e.event_type is E.RESULT_RETURNED}
    assert 0.4 < len(ratings) / len(returned) < 0.6
    for r in ratings:  # after the hand-back, with the next seq, on the counter or online
        assert r.occurred_at > returned[r.dossier_id].occurred_at and r.seq == returned[r.dossier_id].seq + 1
        assert 1 <= r.rating.score <= 5 and r.rating.via in ("hand_back", "online")


def test_the_same_seed_gives_the_same_run_with_every_practice_on():
    cfg = SimulationConfig(communes=8, dossiers=1500, seed=8, rating_rate=0.3, flaky_network_share=0.3, **PERIOD,
                           **PRACTICES)
    first = [(d.arrived_at, d.spooled, events.encode(d.event)) for d in Simulation(cfg).deliveries()]
    second = [(d.arrived_at, d.spooled, events.encode(d.event)) for d in Simulation(cfg).deliveries()]
    assert first == second


def independent_same_day(evs, declared: tuple[str, ...], listed: set[str]):
    """Received in person, same day, promised, kept: per (commune, weekday, declared day); missed per commune."""
    per: dict[str, list] = defaultdict(list)
    for e in evs:
        per[e.dossier_id].append(e)
    table: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    missed: Counter = Counter()
    for dossier in per.values():
        accepted = next((e for e in dossier if e.event_type is E.ACCEPTED), None)
        if accepted is None or accepted.reception_point.value not in ("counter", "outreach"):
            continue
        day = accepted.occurred_at.astimezone(HCM).date()
        ready = [e for e in dossier if e.event_type is E.RESULT_READY]
        same = bool(ready) and ready[0].occurred_at.astimezone(HCM).date() == day
        declared_day = accepted.commune_code in declared and day.weekday() == CFG.no_appointment_weekday
        promise = declared_day and accepted.procedure_code in listed and accepted.reception_point.value == "counter"
        row = table[(accepted.commune_code, day.weekday(), declared_day)]
        row[0] += 1
        row[1] += same
        row[2] += promise
        row[3] += promise and same
        missed[accepted.commune_code] += promise and not same
    return dict(table), {c: n for c, n in missed.items() if n}


def test_same_day_and_missed_promises_match_an_independent_count_of_the_events(run):
    sim, evs = run
    listed = ON_THE_SPOT & set(CFG.procedure_mix)
    expected, expected_missed = independent_same_day(evs, sim.declared.no_appointment, listed)
    cal, cat = WorkCalendar(), default_catalogue()
    counts = recount(evs, sim.service, lambda st: classify(st, st.finished_at, calendar=cal, catalogue=cat).timeliness.value)
    rows = same_day_table(counts, as_of=date(2026, 11, 23))  # every day of the period is over
    got = {(r.commune_code, r.weekday, r.no_appointment_day): [0, 0, 0, 0] for r in rows}
    for r in rows:
        cell = got[(r.commune_code, r.weekday, r.no_appointment_day)]
        for i, n in enumerate((r.received, r.same_day, r.promised, r.kept)):
            cell[i] += n
    assert got == expected
    assert missed_promises(rows) == expected_missed
    assert sum(v[2] for v in expected.values()) >= 100, "too few promised dossiers to mean anything"


def test_no_appointment_days_raise_the_same_day_rate_as_modelled(run):
    sim, evs = run
    listed = ON_THE_SPOT & set(CFG.procedure_mix)
    table, _ = independent_same_day(evs, sim.declared.no_appointment, listed)
    promised = sum(v[2] for v in table.values())
    kept = sum(v[3] for v in table.values())
    assert sim.stats.promised == promised  # the summary's figure is what the events show
    assert sim.stats.on_the_spot <= kept  # resolved on the spot, plus same-day procedures done anyway
    assert kept / promised >= CFG.no_appointment_same_day_rate - 0.05
    # Listed multi-day procedures at the same communes on other weekdays are rarely done the same day.
    per: dict[str, list] = defaultdict(list)
    for e in evs:
        per[e.dossier_id].append(e)
    other = [d for d in per.values() if d[0].commune_code in sim.declared.no_appointment
             and d[0].procedure_code in {"1.004873", "2.000720", "LOCAL-CT-0001"}
             and d[0].event_type is E.ACCEPTED and d[0].occurred_at.astimezone(HCM).weekday() != 3]
    same = sum(any(e.event_type is E.RESULT_READY and e.occurred_at.astimezone(HCM).date()
                   == d[0].occurred_at.astimezone(HCM).date() for e in d) for d in other)
    assert other and same / len(other) < 0.2


def test_service_day_arrivals_come_on_saturday_mornings_at_the_declaring_communes(run):
    sim, evs = run
    first = [e for e in evs if e.seq == 1]
    saturday = [e for e in first if e.occurred_at.astimezone(HCM).weekday() == 5]
    assert saturday and sim.stats.service_days.get("weekend_service") and sim.stats.service_days.get("village_service")
    for e in saturday:
        local = e.occurred_at.astimezone(HCM)
        assert time(7, 30) <= local.time() < time(11, 30) and e.channel is events.Channel.IN_PERSON
        if e.reception_point.value == "outreach":
            assert e.commune_code in sim.declared.village_service
        else:
            assert e.commune_code in sim.declared.weekend_service and e.reception_point.value == "counter"
    assert Counter(e.reception_point.value for e in saturday) == Counter(
        {"counter": sim.stats.service_days["weekend_service"], "outreach": sim.stats.service_days["village_service"]})
    groups = Counter(e.beneficiary_group for e in saturday if e.reception_point.value == "counter")
    weekend = sim.stats.service_days["weekend_service"]
    assert groups["người có công"] + groups["bảo trợ xã hội"] >= 0.3 * weekend
    assert len(first) == CFG.dossiers  # service days are part of the exact total


def test_a_flaky_network_delays_and_bursts_but_never_changes_the_events():
    cfg = SimulationConfig(communes=10, dossiers=2500, seed=5, flaky_network_share=0.3, **PERIOD)
    sim = Simulation(cfg)
    deliveries = list(sim.deliveries())
    in_occurred_order = sorted(deliveries, key=lambda d: (d.event.occurred_at, d.event.dossier_id, d.event.seq))
    without_network = simulate(SimulationConfig(communes=10, dossiers=2500, seed=5, **PERIOD))
    assert [events.encode(d.event) for d in in_occurred_order] == [events.encode(e) for e in without_network]
    assert all(d.arrived_at >= d.event.occurred_at for d in deliveries)
    assert [d.arrived_at for d in deliveries] == sorted(d.arrived_at for d in deliveries)
    per_commune: dict[str, list] = defaultdict(list)
    for d in deliveries:
        per_commune[d.event.commune_code].append(d.event)
    for evs in per_commune.values():  # one queue per commune: the order it happened in
        assert [e.occurred_at for e in evs] == sorted(e.occurred_at for e in evs)
    spooled = [d for d in deliveries if d.spooled]
    assert spooled and {d.event.commune_code for d in spooled} <= sim.network.flaky
    delay = lambda d: (d.arrived_at - d.event.occurred_at).total_seconds()  # noqa: E731
    good = sorted(delay(d) for d in deliveries if d.event.commune_code not in sim.network.flaky)
    flaky = sorted(delay(d) for d in deliveries if d.event.commune_code in sim.network.flaky)
    assert good[len(good) // 2] < 60 < flaky[len(flaky) // 2]


def test_the_summary_prints_what_it_modelled():
    out = io.StringIO()
    cfg = SimulationConfig(communes=6, dossiers=600, seed=3, rating_rate=0.3, flaky_network_share=0.4, **PERIOD,
                           **PRACTICES)
    run_simulation(Settings(), cfg, dry_run=True, console=Console(file=out, width=200), out=io.BytesIO())
    text = out.getvalue()
    sim = Simulation(cfg)
    list(sim.events())
    for line in ("communes with no-appointment days", "resolved on the spot as planned", "dossiers received in the "
                 "villages", "ratings", "communes with a flaky network", "events delivered through a spool"):
        assert line in text
    assert f"{sim.stats.promised:,}" in text and f"{sim.stats.ratings:,}" in text


@pytest.mark.parametrize(("patch", "problem"), [
    ({"no_appointment_share": 1.5}, "no_appointment_share must be between 0 and 1"),
    ({"no_appointment_weekday": 7}, "no_appointment_weekday must be 0 (Monday) to 6"),
    ({"outage_hours": 0}, "outage_hours must be > 0"),
    ({"service_day_volume": -1}, "service_day_volume must be >= 0"),
])
def test_bad_practice_rates_are_refused(patch, problem):
    with pytest.raises(SimulationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        SimulationConfig(**patch)


def test_a_bad_service_calendar_file_is_a_simulation_error(tmp_path):
    bad = tmp_path / "svc.csv"
    bad.write_text("commune_code,kind\n99999,closure\n", encoding="utf-8")
    with pytest.raises(SimulationError, match="line 2"):
        Simulation(SimulationConfig(communes=2, dossiers=10, service_calendar_file=str(bad)))
