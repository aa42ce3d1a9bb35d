"""Service practices and late data on real components: simulator → Kafka (headers) → worker → sink → chDB views.

The simulation runs every practice, ratings and flaky networks. The worker follows the service
calendar the simulation followed (written to a CSV file). Each ClickHouse view is compared with
a count made here from the simulated events and deliveries, without the domain's measure code.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from math import ceil
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from onestop.events import EventType
from onestop.servicefile import service_file_text
from ops.lag import pipeline_groups, wait_caught_up
from ops.services import Services
from producers.run import run_simulation
from producers.sim_practices import ON_THE_SPOT
from producers.simulator import Simulation, SimulationConfig
from sinks.clickhouse import connect, query

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

E = EventType
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
FINISH = {E.RESULT_READY, E.WITHDRAWAL_REQUESTED, E.PROCESSING_STOPPED, E.REFUSED}
# Three weeks from Mon 2 Nov 2026; its only holiday is Tue 24 Nov, so every Thursday and Saturday is ordinary.
CFG = SimulationConfig(communes=10, dossiers=2000, seed=2029, start=date(2026, 11, 2), days=21, rating_rate=0.4,
                       complaint_rate=0.05, flaky_network_share=0.3, no_appointment_share=0.5,
                       weekend_service_share=0.2, village_service_share=0.2)


@pytest.fixture(scope="module")
def practices_run(isolate, tmp_path_factory):
    home = tmp_path_factory.mktemp("practices-home")
    sim = Simulation(CFG)
    calendar_file = home / "service-calendar.csv"
    calendar_file.write_text(service_file_text(sim.service.all_declarations()), encoding="utf-8")
    settings = isolate("practices", home=home, web_port=0, app_id="onestop-it-practices",
                       sink_group="onestop-it-practices-sink", clock="event", service_calendar_file=calendar_file)
    deliveries = list(sim.deliveries())
    services = Services(settings)
    try:
        services.start("worker", "worker")
        services.start("sink", "sink")
        with pytest.MonkeyPatch.context() as env:
            # A slow acknowledgement on this busy machine must not send records through the real spool:
            # the spooled counts compared below are the simulated ones.
            env.setenv("ONESTOP_PUBLISHER_STALL_TIMEOUT_S", "300")
            run_simulation(settings, CFG, console=Console(quiet=True))
        wait_caught_up(settings, pipeline_groups(settings), timeout=300, settle=4.0,
                       on_poll=lambda _: services.check_alive())
    finally:
        services.stop_all()
    client = connect(settings)
    yield settings.clickhouse_database, client, sim, deliveries
    client.close()


def by_dossier(evs) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for e in evs:
        out[e.dossier_id].append(e)
    return {k: sorted(v, key=lambda e: e.seq) for k, v in out.items()}


def test_same_day_rates_and_missed_promises(practices_run):
    db, client, sim, deliveries = practices_run
    declared, listed = set(sim.declared.no_appointment), ON_THE_SPOT & set(CFG.procedure_mix)
    want: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for evs in by_dossier(d.event for d in deliveries).values():
        acc = next((e for e in evs if e.event_type is E.ACCEPTED), None)
        if acc is None or acc.reception_point.value not in ("counter", "outreach"):
            continue
        day = acc.occurred_at.astimezone(HCM).date()
        same = any(e.event_type is E.RESULT_READY and e.occurred_at.astimezone(HCM).date() == day for e in evs)
        no_appt = acc.commune_code in declared and day.weekday() == 3
        promise = no_appt and acc.procedure_code in listed and acc.reception_point.value == "counter"
        cell = want[(acc.commune_code, day.isoweekday(), no_appt)]
        for i, n in enumerate((1, same, promise, promise and same)):
            cell[i] += n
    _, rows = query(client, f"""
        SELECT commune_code, weekday, no_appointment_day, sum(received), sum(same_day), sum(promised), sum(kept),
               sum(missed_promises)
        FROM {db}.same_day_rates GROUP BY commune_code, weekday, no_appointment_day""")
    got = {(c, w, bool(a)): [r, s, p, k] for c, w, a, r, s, p, k, _ in rows}
    assert got == dict(want)
    # The simulated days are long over (the machine's clock is later): every broken promise is missed.
    assert sum(m for *_, m in rows) == sum(v[2] - v[3] for v in want.values())
    assert sum(v[2] for v in want.values()) >= 50


def test_weekend_and_village_service_activity(practices_run):
    db, client, sim, deliveries = practices_run
    want: Counter = Counter()
    for evs in by_dossier(d.event for d in deliveries).values():
        acc = next((e for e in evs if e.event_type is E.ACCEPTED), None)
        if acc is None:
            continue
        local = acc.occurred_at.astimezone(HCM)
        point = acc.reception_point.value
        weekend = acc.commune_code in sim.declared.weekend_service and local.weekday() == 5 and point != "outreach"
        if point == "outreach" or weekend:
            want[(acc.commune_code, "village_service" if point == "outreach" else "weekend_service", point,
                  acc.procedure_code, acc.beneficiary_group or "")] += 1
    _, rows = query(client, f"""SELECT commune_code, service, reception_point, procedure_code, beneficiary_group,
                                       sum(dossiers) FROM {db}.service_activity
                                GROUP BY commune_code, service, reception_point, procedure_code, beneficiary_group""")
    assert {tuple(r[:5]): r[5] for r in rows} == dict(want)
    assert {k[1] for k in want} == {"weekend_service", "village_service"}


def test_satisfaction_per_commune_and_month(practices_run):
    db, client, sim, deliveries = practices_run
    planned_overdue = set(sim.stats.overdue_ids)
    want: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for dossier_id, evs in by_dossier(d.event for d in deliveries).items():
        if not any(e.event_type is E.ACCEPTED for e in evs):
            continue
        finish = next((e for e in evs if e.event_type in FINISH), None)
        if finish is None:
            continue
        handling = next((e.handling_commune_code for e in reversed(evs) if e.handling_commune_code), evs[0].commune_code)
        ratings = [e.rating for e in evs if e.event_type is E.RATED]
        unhappy = any(r.complaint for r in ratings) or (bool(ratings) and ratings[-1].score <= 2)
        month = finish.occurred_at.astimezone(HCM).date().replace(day=1)
        cell = want[(handling, month)]
        for i, n in enumerate((1, dossier_id in planned_overdue, unhappy, bool(ratings))):
            cell[i] += n
    _, rows = query(client, f"SELECT commune_code, month, finished, overdue, complaint_or_bad_rating, rated, "
                            f"satisfaction, attainment FROM {db}.satisfaction")
    assert {(c, m): [f, o, u, r] for c, m, f, o, u, r, *_ in rows} == dict(want)
    for *_, f, o, u, r, rate, attainment in rows:
        assert rate == pytest.approx(max(0.0, 1 - (o + u) / f))
        assert attainment == pytest.approx(min(1.0, rate / 0.9))
    assert sum(v[2] for v in want.values()) > 0 and sum(v[1] for v in want.values()) > 0


def test_late_data_per_commune_and_day(practices_run):
    db, client, sim, deliveries = practices_run
    groups: dict[tuple, list] = defaultdict(list)
    for d in deliveries:
        groups[(d.event.commune_code, d.arrived_at.astimezone(HCM).date())].append(d)
    want = {}
    for key, ds in groups.items():
        delays = sorted(max(0, round((d.arrived_at - d.event.occurred_at).total_seconds() * 1000)) for d in ds)
        rank = lambda p: delays[ceil(p * len(delays) / 100) - 1]  # noqa: E731
        want[key] = (len(ds), rank(50), rank(95), delays[-1], sum(d.spooled for d in ds))
    _, rows = query(client, f"SELECT commune_code, day, events, p50_ms, p95_ms, max_ms, spooled FROM {db}.late_data")
    got = {(c, day): (n, p50, p95, mx, sp) for c, day, n, p50, p95, mx, sp in rows}
    assert got == want
    flaky = sim.network.flaky
    assert all(sp == 0 for (c, _), (*_, sp) in got.items() if c not in flaky)
    assert sum(sp for (c, _), (*_, sp) in got.items() if c in flaky) == sum(d.spooled for d in deliveries) > 0
