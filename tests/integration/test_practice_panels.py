"""The practice panels' SQL, run on chDB over a simulated province the worker and the sink's rows produced.

"Now" (the dashboard range's end) is Sunday 22 Nov 2026 20:00 in Hà Tĩnh, after three simulated weeks.
Every figure a panel shows is compared with a count made here from the simulated events.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from math import ceil
from zoneinfo import ZoneInfo

import msgspec
import pytest

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.events import EventType
from onestop.lateness import delivery_headers
from onestop.settings import Settings
from onestop.workcal import default_calendar
from dashboards.practices import (LATE_DATA_MAP, PANELS, SAME_DAY_NO_APPOINTMENT, SATISFACTION_RANKING,
                                  SATISFACTION_TILE, SERVICE_ACTIVITY)
from producers.sim_practices import ON_THE_SPOT
from producers.simulator import Simulation, SimulationConfig
from sinks.clickhouse import connect, ensure_schema, insert, query
from sinks.rows import COLUMNS, counter_rows, event_rows
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.processor import Processor

pytestmark = pytest.mark.integration
E = EventType
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 22, 20, 0, tzinfo=HCM)
TODAY = NOW.date()
CFG = SimulationConfig(communes=10, dossiers=2500, seed=31, start=date(2026, 11, 2), days=21, rating_rate=0.5,
                       complaint_rate=0.05, flaky_network_share=0.3, no_appointment_share=0.5,
                       weekend_service_share=0.2, village_service_share=0.2)
PARTITIONS = 3


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def expand(sql: str, db: str, commune: str | None = None) -> str:
    """What Grafana and the ClickHouse plugin substitute: the database, the commune scope, the range's end."""
    scoped = re.sub(r"@scope\(([A-Za-z_][A-Za-z0-9_.]*)\)", (lambda m: f"{m.group(1)} = '{commune}'") if commune
                    else "1", sql.replace("{db}", db))
    return scoped.replace("$__toTime", f"toDateTime({int(NOW.timestamp())})")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    sim = Simulation(CFG)
    deliveries = [d for d in sim.deliveries() if d.arrived_at <= NOW]
    proc = Processor(Evaluator(default_calendar(), default_catalogue()), Clock("event"), sim.service)
    stores = {p: DictStore() for p in range(PARTITIONS)}
    offsets: Counter = Counter()
    settings = Settings(home=tmp_path_factory.mktemp("panels-home"), clickhouse_dsn="")
    client = connect(settings)
    db = settings.clickhouse_database
    ensure_schema(client, db)
    tables: dict[str, list] = defaultdict(list)
    for d in deliveries:
        p = sum(d.event.dossier_id.encode()) % PARTITIONS  # a dossier stays on one partition
        raw = events.encode(d.event)
        proc.on_event(p, offsets[p], raw, stores[p])
        for table, rows in event_rows(raw, p, offsets[p], received_at=d.arrived_at,
                                      headers=delivery_headers(d.arrived_at, spooled=d.spooled)).items():
            tables[table] += rows
        offsets[p] += 1
    for n, batch in enumerate(proc.counters.drain({p: proc.clock.now(p) for p in range(PARTITIONS)})):
        for table, rows in counter_rows(msgspec.json.encode(batch), 0, n).items():
            tables[table] += rows
    for table, rows in tables.items():
        insert(client, f"{db}.{table}", rows, COLUMNS[table], token=f"panels:{table}")
    yield client, db, sim, [d for d in deliveries]
    client.close()


def run(client, db, panel, commune=None):
    return query(client, expand(panel.sql, db, commune))


def dossiers(deliveries):
    out: dict[str, list] = defaultdict(list)
    for d in deliveries:
        out[d.event.dossier_id].append(d.event)
    return [sorted(v, key=lambda e: e.seq) for v in out.values()]


def test_every_panel_runs_in_both_scopes(seeded):
    client, db, sim, _ = seeded
    for panel in PANELS:
        _, rows = run(client, db, panel)
        assert rows, panel.key
        for commune in (*sim.declared.no_appointment[:1], *sim.declared.village_service[:1], "99999"):
            run(client, db, panel, commune)  # the drill-down's SQL is valid too
    assert len({p.key for p in PANELS}) == len(PANELS)


def test_same_day_on_no_appointment_days_against_other_days(seeded):
    client, db, sim, deliveries = seeded
    declared, listed = set(sim.declared.no_appointment), ON_THE_SPOT & set(CFG.procedure_mix)
    cells: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for evs in dossiers(deliveries):
        acc = next((e for e in evs if e.event_type is E.ACCEPTED), None)
        if acc is None or acc.reception_point.value not in ("counter", "outreach") or acc.commune_code not in declared:
            continue
        day = acc.occurred_at.astimezone(HCM).date()
        same = any(e.event_type is E.RESULT_READY and e.occurred_at.astimezone(HCM).date() == day for e in evs)
        thursday = day.weekday() == 3
        promise = thursday and acc.procedure_code in listed and acc.reception_point.value == "counter"
        c = cells[acc.commune_code]
        c[0 if thursday else 2] += same
        c[1 if thursday else 3] += 1
        c[4] += promise and not same and day < TODAY
        c[5] += promise and day < TODAY
    _, rows = run(client, db, SAME_DAY_NO_APPOINTMENT)
    names = {c.code: c.name for c in sim.communes}
    got = {name: (round(a, 9), round(b, 9), n, m, p) for name, a, b, n, m, p in rows}
    want = {names[c]: (round(v[0] / v[1], 9), round(v[2] / v[3], 9), v[1], v[4], v[5]) for c, v in cells.items()}
    assert got == want
    assert all(a > b for a, b, *_ in got.values()), "no-appointment days should raise the same-day rate"
    _, one = run(client, db, SAME_DAY_NO_APPOINTMENT, commune=sim.declared.no_appointment[0])
    assert [r[0] for r in one] == [names[sim.declared.no_appointment[0]]]


def test_weekend_and_village_service_activity(seeded):
    client, db, sim, deliveries = seeded
    days: dict[tuple, set] = defaultdict(set)
    counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for evs in dossiers(deliveries):
        acc = next((e for e in evs if e.event_type is E.ACCEPTED), None)
        if acc is None:
            continue
        local = acc.occurred_at.astimezone(HCM)
        if acc.reception_point.value == "outreach":
            kind = "Về thôn"
        elif acc.commune_code in sim.declared.weekend_service and local.weekday() == 5:
            kind = "Ngày nghỉ vì Nhân dân"
        else:
            continue
        if local.date() <= TODAY - timedelta(days=30):
            continue
        key = (acc.commune_code, kind)
        days[key].add(local.date())
        cell = counts[key]
        cell[0] += 1
        cell[1] += acc.beneficiary_group == "người có công"
        cell[2] += acc.beneficiary_group == "bảo trợ xã hội"
    names = {c.code: c.name for c in sim.communes}
    _, rows = run(client, db, SERVICE_ACTIVITY)
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == {
        (names[c], k): (len(days[(c, k)]), *v) for (c, k), v in counts.items()}
    assert {r[1] for r in rows} == {"Về thôn", "Ngày nghỉ vì Nhân dân"}


def satisfaction_expected(sim, deliveries) -> dict[str, list[int]]:
    """Finished this month (Nov 2026), overdue as the simulator planned, complaint or latest score <= 2, rated."""
    overdue = set(sim.stats.overdue_ids)
    cells: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    finishing = {E.RESULT_READY, E.WITHDRAWAL_REQUESTED, E.PROCESSING_STOPPED, E.REFUSED}
    for evs in dossiers(deliveries):
        if not any(e.event_type is E.ACCEPTED for e in evs):
            continue
        finish = next((e for e in evs if e.event_type in finishing), None)
        if finish is None or finish.occurred_at.astimezone(HCM).date().replace(day=1) != TODAY.replace(day=1):
            continue
        ratings = [e.rating for e in evs if e.event_type is E.RATED]
        # Timeliness and satisfaction belong to the handling commune, named on the receipt.
        cell = cells[next(e for e in evs if e.event_type is E.ACCEPTED).handling_unit]
        for i, n in enumerate((1, evs[0].dossier_id in overdue,
                               any(r.complaint for r in ratings) or (bool(ratings) and ratings[-1].score <= 2),
                               bool(ratings))):
            cell[i] += n
    return cells


def test_satisfaction_766(seeded):
    client, db, sim, deliveries = seeded
    cells = satisfaction_expected(sim, deliveries)
    total = [sum(v[i] for v in cells.values()) for i in range(4)]
    _, [(tile,)] = run(client, db, SATISFACTION_TILE)
    assert tile == pytest.approx(max(0.0, 1 - (total[1] + total[2]) / total[0]))
    names = {c.code: c.name for c in sim.communes}
    _, rows = run(client, db, SATISFACTION_RANKING)
    want = {names[c]: (max(0.0, 1 - (f + o) / n), n, f, o, r) for c, (n, f, o, r) in cells.items()}
    got = {name: (rate, n, f, o, r) for name, rate, _attainment, n, f, o, r in rows}
    assert got.keys() == want.keys()
    for name, (rate, *rest) in got.items():
        assert rate == pytest.approx(want[name][0]) and tuple(rest) == want[name][1:]
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)  # lowest first
    assert total[2] > 0 and total[3] > 0


def test_late_data_map(seeded):
    client, db, sim, deliveries = seeded
    groups: dict[tuple, list] = defaultdict(list)
    for d in deliveries:
        groups[(d.event.commune_code, d.arrived_at.astimezone(HCM).date())].append(d)
    names = {c.code: c.name for c in sim.communes}
    want = {}
    for code in {c for c, _ in groups}:
        cells, spooled, events_, worst = [], 0, 0, 0
        for back in range(6, -1, -1):
            ds = groups.get((code, TODAY - timedelta(days=back)), [])
            delays = sorted(max(0, round((d.arrived_at - d.event.occurred_at).total_seconds() * 1000)) for d in ds)
            cells.append(delays[ceil(95 * len(delays) / 100) - 1] / 60000 if delays else None)
            spooled += sum(d.spooled for d in ds)
            events_ += len(ds)
            worst = max([worst, *delays])
        if events_:
            want[names[code]] = (*cells, spooled / events_, worst / 60000)
    _, rows = run(client, db, LATE_DATA_MAP)
    got = {r[0]: tuple(r[1:]) for r in rows}
    assert got.keys() == want.keys()
    for name, values in got.items():
        assert [v is None for v in values] == [w is None for w in want[name]], name
        assert [v for v in values if v is not None] == pytest.approx([w for w in want[name] if w is not None]), name
    flaky = {names[c] for c in sim.network.flaky}
    assert {r[0] for r in rows[:2]} <= flaky  # the worst delays come first, and they are the flaky communes'
