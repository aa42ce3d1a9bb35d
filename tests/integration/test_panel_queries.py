"""Every IOC panel's SQL on chDB over seeded pipeline data, macros expanded as the ClickHouse plugin does.

The expected values come from ``panel_seed.Truth``: the simulated events folded
by the domain core and judged by the SLA clock at the store's clock. A panel
whose SQL reads the wrong table, column, unit, time zone or period fails here.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from dashboards import panels as p
from dashboards.catalog import COMMUNE, PROVINCE
from dashboards.data import run_panel, store_clock, store_query
from dashboards.macros import TimeRange, expand, interval_for
from dashboards.sql import procedure_names
from onestop.communes import commune as commune_of
from onestop.settings import Settings
from onestop.workcal import VN_TZ
from sinks.clickhouse import connect
from tests.integration.panel_seed import Seeded, Truth, seed_store

pytestmark = pytest.mark.integration
DB = "ioc"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("panels"), clickhouse_dsn="")
    client = connect(settings)
    seeded = seed_store(client, DB)
    yield store_query(client), seeded, Truth(seeded)
    client.close()


@pytest.fixture(scope="module")
def busiest(store) -> str:
    _, _, truth = store
    return max({s.handling_commune_code for s in truth.states}, key=lambda c: len(truth.open(c)))


def run(store, panel, commune=None, span=timedelta(days=7)):  # type: ignore[no-untyped-def]
    query, seeded, _ = store
    dashboard = COMMUNE if commune else PROVINCE
    scoped = panel.scoped(dashboard.scope, DB)
    result = run_panel(scoped, query, TimeRange.ending(seeded.now, span), {"commune": commune} if commune else {})
    assert result.error is None, f"{panel.key}: {result.error}\n{result.sql}"
    return result


def one_row(result) -> dict:  # type: ignore[no-untyped-def]
    assert len(result.rows) == 1, result.rows
    return dict(zip(result.columns, result.rows[0]))


def test_the_store_clock_is_the_workers_event_clock(store):
    query, seeded, _ = store
    assert store_clock(query, DB) == seeded.now


@pytest.mark.parametrize("commune", [None, "busiest"])
def test_received_today_by_channel(store, busiest, commune):
    commune = busiest if commune else None
    expected = store[2].received_today(commune)
    assert sum(expected.values()) > 0, "the seed must receive dossiers on its last day"
    got = one_row(run(store, p.RECEIVED_TODAY, commune))
    assert got == {"Trực tiếp": expected[1], "Trực tuyến": expected[2], "Bưu chính": expected[3]}


@pytest.mark.parametrize("commune", [None, "busiest"])
def test_backlog_tiles(store, busiest, commune):
    commune = busiest if commune else None
    sla = store[2].sla_counts(commune)
    assert one_row(run(store, p.OPEN_BACKLOG, commune)) == {"Đang giải quyết": sum(sla.values())}
    assert one_row(run(store, p.DUE_SOON, commune)) == {"Sắp đến hạn": sla["due_soon"]}
    assert one_row(run(store, p.OVERDUE_NOW, commune)) == {"Quá hạn": sla["overdue"]}
    if commune is None:
        assert sla["overdue"] > 0 and sla["due_soon"] > 0, "the seed must have overdue and due-soon dossiers"


@pytest.mark.parametrize("commune", [None, "busiest"])
def test_rates_over_30_days(store, busiest, commune):
    commune = busiest if commune else None
    truth = store[2]
    assert one_row(run(store, p.ONTIME_30D, commune))["Đúng hạn"] == pytest.approx(truth.ontime_rate(commune))
    assert one_row(run(store, p.ONLINE_SHARE, commune))["Trực tuyến"] == pytest.approx(truth.online_share(commune))
    assert one_row(run(store, p.ONTIME_766, commune))["Đúng hạn 766"] == pytest.approx(truth.ontime_766(commune))


def test_received_and_resolved_over_time_per_hour(store):
    _, seeded, truth = store
    result = run(store, p.THROUGHPUT)
    assert result.columns == ["time", "Tiếp nhận", "Giải quyết"]
    start = seeded.now - timedelta(days=7)
    expected = truth.hourly(start, seeded.now)
    got = {t.replace(tzinfo=timezone.utc): (r, d) for t, r, d in result.rows if (r, d) != (0, 0)}
    assert got == expected
    # Hours with nothing are filled with zeros, so the line drops to 0 at night instead of bridging it.
    times = [row[0] for row in result.rows]
    assert {b - a for a, b in zip(times, times[1:])} == {timedelta(hours=1)}
    assert len(times) >= 7 * 24


def test_a_wider_range_reads_day_buckets_in_day_intervals(store):
    _, seeded, truth = store
    result = run(store, p.THROUGHPUT, span=timedelta(days=400))
    received = sum(r for _, r, _ in result.rows)
    assert received == len([s for s in truth.accepted() if s.accepted_at >= seeded.now - timedelta(days=401)])
    steps = {(b[0] - a[0]) for a, b in zip(result.rows, result.rows[1:])}
    assert steps and all(s >= timedelta(days=1) for s in steps)


def test_commune_ranking_by_on_time_rate(store):
    truth = store[2]
    communes = {s.handling_commune_code for s in truth.states}
    expected = sorted(((truth.ontime_rate(c), c) for c in communes if truth.resolved_30(c)),
                      key=lambda rc: (rc[0], -sum(truth.resolved_30(rc[1]).values()), rc[1]))
    result = run(store, p.RANK_ONTIME)
    assert [row[0] for row in result.rows] == [commune_of(c).name for _, c in expected]
    assert [row[1] for row in result.rows] == pytest.approx([r for r, _ in expected])


def test_commune_ranking_by_overdue_count(store):
    truth = store[2]
    communes = {s.handling_commune_code for s in truth.states}
    counts = {c: len(truth.overdue_open(c)) for c in communes}
    expected = [(commune_of(c).name, n) for c, n in sorted(counts.items(), key=lambda cn: (-cn[1], cn[0])) if n]
    assert [(row[0], row[1]) for row in run(store, p.RANK_OVERDUE).rows] == expected


# The due instant shown is the one that stands: a pause that ended moves it, a running pause does not yet
# (while a dossier waits for the citizen its clock stands still, so its days overdue stand still too).
@pytest.mark.parametrize("commune", [None, "busiest"])
def test_overdue_list(store, busiest, commune):
    commune = busiest if commune else None
    truth = store[2]
    expected = truth.overdue_open(commune)
    result = run(store, p.OVERDUE_LIST, commune)
    got = {row[0]: dict(zip(result.columns, row)) for row in result.rows}
    assert set(got) == set(expected)
    for dossier, due in expected.items():
        row = got[dossier]
        assert row["Số ngày quá hạn"] == (truth.today - truth.local(due)).days
        assert row["Hạn xử lý"] == due.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
        # Escalation is the SLA clock's verdict now (a running pause keeps moving the instant it judges).
        judged_now = truth.verdict(truth.state(dossier)).judged_due_at
        level = truth.calendar.working_days_between(truth.local(judged_now), truth.today) >= 3
        assert row["Mức cảnh báo"] == ("Báo cáo lãnh đạo" if level else "Quá hạn")
    days = [row["Số ngày quá hạn"] for row in got.values()]
    assert [r[4] for r in result.rows] == sorted(days, reverse=True)


def test_mean_resolution_time_per_procedure(store):
    truth = store[2]
    expected = {procedure_names()[code]: v for code, v in truth.mean_resolution_days().items()}
    result = run(store, p.RESOLUTION_TIME)
    got = {row[0]: (row[1], row[2]) for row in result.rows}
    assert set(got) == set(expected)
    for name, (days, n) in expected.items():
        assert got[name] == (pytest.approx(days, abs=0.006), n)


def test_open_dossiers_by_age_and_sla(store, busiest):
    expected = store[2].open_by_age(busiest)
    result = run(store, p.OPEN_BY_AGE, busiest)
    got = {row[0]: (row[1], row[2], row[3]) for row in result.rows}
    assert got == {age: (c["within_due"], c["due_soon"], c["overdue"]) for age, c in expected.items()}
    order = ["0-1d", "1-3d", "3-7d", "7-15d", "15-30d", ">30d"]
    assert [row[0] for row in result.rows] == [a for a in order if a in expected]


def test_recent_alerts_of_a_commune(store, busiest):
    _, seeded, _ = store
    start = seeded.now - timedelta(days=7)
    mine = sorted((a for a in seeded.alerts if a.commune_code == busiest and start <= a.fired_at <= seeded.now),
                  key=lambda a: a.alert_id)
    mine.sort(key=lambda a: a.fired_at, reverse=True)  # latest first, ties by alert id
    assert mine, "the busiest commune must have alerts"
    result = run(store, p.RECENT_ALERTS, busiest)
    assert [row[2] for row in result.rows] == [a.dossier_id for a in mine[:50]]
    names = {"due_soon": "Sắp đến hạn", "overdue": "Quá hạn", "escalation": "Báo cáo lãnh đạo", "cleared": "Đã xử lý"}
    assert [row[1] for row in result.rows] == [names[a.kind] for a in mine[:50]]


def test_every_clickhouse_panel_runs_on_both_dashboards(store, busiest):
    for dashboard in (PROVINCE, COMMUNE):
        for panel in dashboard.panels:
            run(store, panel, busiest if dashboard is COMMUNE else None)



def test_resolution_time_can_be_answered_from_the_events_projection(store):
    """force_optimize_projection makes ClickHouse refuse the query unless it reads a projection."""
    query, seeded, truth = store
    time_range = TimeRange.ending(seeded.now, timedelta(days=7))
    sql = expand(p.RESOLUTION_TIME.scoped("province", DB).sql, time_range, interval_for(time_range), {})
    _, rows = query(sql + " SETTINGS force_optimize_projection = 1")
    assert len(rows) == len(truth.mean_resolution_days())
