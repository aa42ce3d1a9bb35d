"""``onestop rebuild`` and ``onestop reconcile`` against what the live pipeline wrote.

One live run (simulator → Kafka → worker → sink → chDB, event clock) over a month with every
service practice, ratings and flaky networks (late and out-of-order deliveries), plus a record
that is not JSON, one that admission refuses, and an early event sent again at the end. Its derived tables are read, the store is
salted with rows no event produced, and ``onestop rebuild`` must leave every derived table
equal, row for row, to what the live pipeline wrote, and the other tables as they were.
``onestop reconcile`` must find no difference in the live tables, and name exactly the
differences made by hand afterwards (a counter row with a wrong count, deleted rows). The tests
run in this order: the rebuild comes after those changes, and must undo them too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from rich.console import Console

from derived_tables import DERIVED, KEPT, first_difference, read, write_strays
from onestop import events
from onestop.events import Channel, DossierEvent, EventType
from onestop.servicefile import service_file_text
from ops.lag import wait_caught_up
from ops.services import Services
from producers.publisher import Publisher
from producers.run import run_simulation
from producers.simulator import Simulation, SimulationConfig
from sinks.clickhouse import connect, insert, query
from sinks.rows import COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CFG = SimulationConfig(communes=6, dossiers=1200, seed=2031, start=date(2026, 11, 2), days=21, rating_rate=0.4,
                       complaint_rate=0.05, flaky_network_share=0.3, no_appointment_share=0.5,
                       weekend_service_share=0.2, village_service_share=0.2)
PERIOD = "2026-11"


def cli(settings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**Services(settings).env(), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "onestop_cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def live(isolate, tmp_path_factory):
    home = tmp_path_factory.mktemp("rebuild-home")
    sim = Simulation(CFG)
    calendar_file = home / "service-calendar.csv"
    calendar_file.write_text(service_file_text(sim.service.all_declarations()), encoding="utf-8")
    settings = isolate("rebuild", home=home, web_port=0, app_id="onestop-it-rebuild",
                       sink_group="onestop-it-rebuild-sink", clock="event", service_calendar_file=calendar_file)
    services = Services(settings)
    try:
        services.start("worker", "worker")
        services.start("sink", "sink")
        with pytest.MonkeyPatch.context() as env:
            env.setenv("ONESTOP_PUBLISHER_STALL_TIMEOUT_S", "300")
            run_simulation(settings, CFG, console=Console(quiet=True))
        ahead = DossierEvent(event_id="far-ahead-1", event_type=EventType.SUBMITTED, dossier_id="FAR-AHEAD", seq=1,
                             occurred_at=datetime.now(timezone.utc) + timedelta(days=400), commune_code="18073",
                             procedure_code="2.000720", channel=Channel.IN_PERSON, source="gateway")
        again = _an_early_acceptance(sim)
        with Publisher(settings, client_id="it-rebuild") as pub:
            pub.publish_raw(b"junk", b"{not json")
            pub.publish_raw(b"FAR-AHEAD", events.encode(ahead))
            # A producer sends an early event again, weeks of event time later: the worker ignores the copy,
            # dossier_events keeps one row for both (with the later offset), event_deliveries one per record.
            pub.publish_raw(again.dossier_id.encode(), events.encode(again))
            pub.flush(timeout=60)
        sink_topics = [settings.topic_events, settings.topic_metrics, settings.topic_alerts, settings.topic_dlq,
                       settings.topic_state]
        wait_caught_up(settings, {settings.app_id: [settings.topic_events], settings.sink_group: sink_topics},
                       timeout=300, settle=5.0, on_poll=lambda _: services.check_alive())
    finally:
        services.stop_all()
    client = connect(settings)
    try:
        tables = read(client, settings.clickhouse_database, {**DERIVED, **KEPT})
    finally:
        client.close()
    return settings, tables


def _an_early_acceptance(sim: Simulation) -> DossierEvent:
    """The acceptance of the first dossier that was accepted and then resolved in the simulated month."""
    accepted: dict[str, DossierEvent] = {}
    for event in sim.events():
        if event.event_type is EventType.ACCEPTED:
            accepted.setdefault(event.dossier_id, event)
        elif event.event_type is EventType.RESULT_READY and event.dossier_id in accepted:
            return accepted[event.dossier_id]
    raise AssertionError("the simulation resolved no accepted dossier")


def test_the_live_run_filled_every_derived_table(live):
    settings, tables = live
    empty = [name for name in DERIVED if not tables[name]]
    assert not empty, f"the live pipeline left {empty} empty: the comparison below would prove nothing there"
    reasons = {row[2] for row in tables["dead_letters"]}  # kafka_partition, kafka_offset, reason_code, …
    assert {"malformed_json", "occurred_in_future"} <= reasons, reasons
    # The event sent again is one row of dossier_events and two records of event_deliveries.
    assert len(tables["event_deliveries"]) == len(tables["dossier_events"]) + 1


def _reconcile(settings, *args: str) -> tuple[int, list[dict], str]:
    done = cli(settings, "reconcile", "--format", "jsonl", *args)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, lines, done.stderr


def test_reconcile_finds_no_difference_in_the_live_tables(live):
    settings, _ = live
    code, differences, stderr = _reconcile(settings, "--period", PERIOD)
    assert (code, differences) == (0, []), stderr[-3000:]
    assert "no differences" in stderr


def _view_rows(client, db: str, sql: str) -> list[tuple]:
    return query(client, sql.format(db=db))[1]


def _key_json(names: list[str], values: tuple) -> dict:
    out = {}
    for name, value in zip(names, values):
        if isinstance(value, datetime):
            value = value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        elif isinstance(value, date):
            value = value.isoformat()
        out[name] = value
    return out


BACKLOG_KEY = ["commune_code", "field", "procedure_code", "channel", "sla", "waiting", "age_bucket", "escalated"]
THROUGHPUT_KEY = ["granularity", "bucket_start", "commune_code", "field", "channel", "measure"]


def test_reconcile_names_a_wrong_counter_row_and_deleted_rows(live):
    settings, _ = live
    db = settings.clickhouse_database
    client = connect(settings)
    try:
        # The stream's own numbers, before anything is changed by hand.
        columns = COLUMNS["backlog_partition"]
        [partition_row] = _view_rows(client, db, f"SELECT {', '.join(columns)} FROM {{db}}.backlog_partition FINAL "
                                                 "WHERE n > 0 ORDER BY version DESC, commune_code LIMIT 1")
        key = tuple(partition_row[:8])
        [(open_before,)] = _view_rows(client, db, "SELECT open_dossiers FROM {db}.backlog_now WHERE " + " AND ".join(
            f"{c} = {v!r}" if isinstance(v, str) else f"{c} = {int(v)}" for c, v in zip(BACKLOG_KEY, key)))
        [(commune, day)] = _view_rows(client, db, "SELECT commune_code, toDate(bucket_start, 'Asia/Ho_Chi_Minh') "
                                                  "FROM {db}.throughput WHERE granularity = 'd' "
                                                  "ORDER BY dossiers DESC, bucket_start LIMIT 1")
        deleted = _view_rows(client, db, f"SELECT {', '.join(THROUGHPUT_KEY)}, dossiers FROM {{db}}.throughput "
                                         f"WHERE granularity = 'd' AND commune_code = '{commune}' "
                                         f"AND toDate(bucket_start, 'Asia/Ho_Chi_Minh') = '{day}'")
        assert deleted
        # A newer row of one source partition with a wrong count, and a day of one commune's throughput gone.
        wrong = list(partition_row)
        wrong[columns.index("n")] += 7
        wrong[columns.index("version")] += 1
        insert(client, f"{db}.backlog_partition", [wrong], columns, token="it:wrong-backlog")
        client.command(f"ALTER TABLE {db}.throughput_partition DELETE WHERE granularity = 'd' "
                       f"AND commune_code = '{commune}' AND toDate(bucket_start, 'Asia/Ho_Chi_Minh') = '{day}' "
                       "SETTINGS mutations_sync = 2")
    finally:
        client.close()

    want_backlog = {"table": "backlog_now", "key": _key_json(BACKLOG_KEY, key), "stream": open_before + 7,
                    "recomputed": open_before}
    want_deleted = [{"table": "throughput", "key": _key_json(THROUGHPUT_KEY, row[:-1]), "stream": 0,
                     "recomputed": row[-1]} for row in deleted]
    code, got, stderr = _reconcile(settings, "--period", PERIOD)
    assert code == 1, stderr[-3000:]
    assert sorted(got, key=repr) == sorted([want_backlog, *want_deleted], key=repr)
    assert f"{len(got)} differences" in stderr

    other_day = day + timedelta(days=1) if day.day < 20 else day - timedelta(days=1)
    code, got, _ = _reconcile(settings, "--period", other_day.isoformat())
    assert (code, got) == (1, [want_backlog])  # the backlog is compared as of now, whatever the period


def test_rebuild_gives_every_derived_table_as_the_live_pipeline_wrote_it(live):
    settings, before = live  # the tables as the live pipeline wrote them, read before any test changed them
    db = settings.clickhouse_database
    client = connect(settings)
    try:
        write_strays(client, db)
        salted = read(client, db, {"alerts": DERIVED["alerts"], "counter_epochs": DERIVED["counter_epochs"]})
    finally:
        client.close()
    assert salted["alerts"] != before["alerts"] and salted["counter_epochs"] != before["counter_epochs"]

    done = cli(settings, "rebuild", "--yes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    client = connect(settings)
    try:
        after = read(client, db, {**DERIVED, **KEPT})
    finally:
        client.close()
    differing = {name: first_difference(after[name], before[name]) for name in after if after[name] != before[name]}
    assert not differing, "\n".join(f"{name}: {why}" for name, why in differing.items())


def test_rebuild_refuses_while_a_sink_owns_the_store_and_reconcile_reads_through_it(live):
    from sinks.store_owner import find_owner

    settings, _ = live
    services = Services(settings)
    try:
        services.start("sink", "sink")
        deadline = time.monotonic() + 60
        while find_owner(settings) is None:
            services.check_alive()
            assert time.monotonic() < deadline, "the sink did not advertise its store"
            time.sleep(0.3)
        done = cli(settings, "rebuild", "--yes", timeout=120)
        assert done.returncode == 1
        assert "stop the sink first" in done.stderr
        from sinks.query_service import query_rows, reader_for

        with reader_for(settings) as reader:
            _, [(count,)] = query_rows(reader, f"SELECT count() FROM {settings.clickhouse_database}.dossier_events")
        assert count > 0, "a refused rebuild must not have truncated anything"
        # After the rebuild above, the store again says what the live run wrote; reconcile only reads.
        code, differences, stderr = _reconcile(settings, "--period", PERIOD)
        assert (code, differences) == (0, []), stderr[-3000:]
    finally:
        services.stop_all()
