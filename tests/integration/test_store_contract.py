"""The store contract: what every store the pipeline writes to must do, run on each store there is.

The same tests run on the embedded engine (chDB) always, and on a ClickHouse
server when ``ONESTOP_TEST_CLICKHOUSE_URL`` names one
(``ONESTOP_TEST_CLICKHOUSE_URL=http://user:password@host:8123 make test``; the
tests use a database of their own there and drop it at the end). Everything
the pipeline relies on is here: migrations, deduplicated inserts, the
ReplacingMergeTree versions, the counter views and their epochs, events counted
once by event_id, column types and the table rules.
"""

import os
import uuid
from datetime import datetime, timezone

import pytest

from onestop import events
from onestop.settings import Settings
from sinks import columns, history_schema, migrations, schema
from sinks.clickhouse import StoreError, connect, ensure_schema, insert, query
from sinks.rows import COLUMNS

pytestmark = pytest.mark.integration
T = datetime(2026, 11, 5, 3, 0, tzinfo=timezone.utc)
SERVER = os.environ.get("ONESTOP_TEST_CLICKHOUSE_URL", "")
STORES = ["chdb", *(["server"] if SERVER else [])]


@pytest.fixture(scope="module", params=STORES)
def store(request, tmp_path_factory):
    if request.param == "chdb":
        settings = Settings(home=tmp_path_factory.mktemp("chdb-home"), clickhouse_dsn="")
    else:
        settings = Settings(home=tmp_path_factory.mktemp("server-home"), clickhouse_dsn=SERVER,
                            clickhouse_database=f"onestop_contract_{uuid.uuid4().hex[:10]}")
    client = connect(settings)
    ensure_schema(client, settings.clickhouse_database)
    yield client, settings.clickhouse_database
    if request.param == "server":
        client.command(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    client.close()


def _utc(value):  # chDB answers in UTC without a zone; a server may add one
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def backlog_row(commune: str, partition: int, n: int, version: int) -> list:
    return [commune, "Hộ tịch", "1.001193", 1, "within_due", "none", "0-1d", False, n, partition, version, T]


def test_a_retried_insert_with_the_same_token_is_dropped(store):
    client, db = store
    rows = [backlog_row("18073", 0, 5, 10)]
    for _ in range(3):
        insert(client, f"{db}.{schema.BACKLOG_PARTS}", rows, COLUMNS[schema.BACKLOG_PARTS], token="t:0:1-1")
    _, [(count,)] = query(client, f"SELECT count() FROM {db}.{schema.BACKLOG_PARTS}")
    assert count == 1


def test_backlog_view_keeps_the_latest_version_and_adds_partitions(store):
    client, db = store
    rows = [backlog_row("18754", 0, 3, 100), backlog_row("18754", 0, 7, 200), backlog_row("18754", 1, 2, 150)]
    insert(client, f"{db}.{schema.BACKLOG_PARTS}", rows, COLUMNS[schema.BACKLOG_PARTS], token="t:views:1")
    _, [(n,)] = query(client, f"SELECT open_dossiers FROM {db}.{schema.BACKLOG} WHERE commune_code = '18754'")
    assert n == 7 + 2


def test_rows_older_than_the_partitions_last_rebuild_are_void(store):
    client, db = store
    # Partition 2 counted 4 dossiers at version 300, then was rebuilt at epoch 400 with none left:
    # the rebuild re-sent nothing for this key, so the old row must stop counting.
    insert(client, f"{db}.{schema.BACKLOG_PARTS}", [backlog_row("03595", 2, 4, 300)],
           COLUMNS[schema.BACKLOG_PARTS], token="t:epoch:1")
    _, before = query(client, f"SELECT open_dossiers FROM {db}.{schema.BACKLOG} WHERE commune_code = '03595'")
    insert(client, f"{db}.{schema.EPOCHS}", [[2, 400]], COLUMNS[schema.EPOCHS], token="t:epoch:2")
    _, after = query(client, f"SELECT open_dossiers FROM {db}.{schema.BACKLOG} WHERE commune_code = '03595'")
    assert before == [(4,)] and after in ([], [(0,)])


def test_the_sinks_column_checks_read_the_types_chdb_created(store):
    client, db = store
    for table, names in COLUMNS.items():
        _, described = query(client, f"DESCRIBE TABLE {db}.{table}")
        created = {row[0]: row[1] for row in described}
        assert {n: columns.table_types(table)[n].replace(" ", "") for n in names} == \
            {n: created[n].replace(" ", "") for n in names}


def event_row(**changes) -> list:
    row = dict(zip(COLUMNS[schema.EVENTS], [
        "ev-edge", "submitted", "D-edge", 1, T, "18073", "18073", "1.001193", 2, None, None, None, "gateway:18073",
        1, 0, 0, None, None, None, None, None]))  # contract 1.1: reception point, beneficiary group, rating
    return list({**row, **changes}.values())


EDGES = [
    {"seq": 2**32 - 1}, {"occurred_at": events.EARLIEST}, {"occurred_at": events.LATEST},
    {"due_at": events.LATEST}, {"reason": "lý do " * 300}, {"dossier_id": "H" * events.ID_MAX},
    {"kafka_offset": 2**64 - 1},
]


@pytest.mark.parametrize("index", range(len(EDGES)))
def test_values_the_check_lets_through_are_stored_as_they_are(store, index):
    client, db = store
    (name, value), = EDGES[index].items()
    row = event_row(event_id=f"edge-{index}", **EDGES[index])
    assert columns.row_problem(schema.EVENTS, COLUMNS[schema.EVENTS], row) is None
    insert(client, f"{db}.{schema.EVENTS}", [row], COLUMNS[schema.EVENTS], token=f"edge:{index}")
    _, [(got,)] = query(client, f"SELECT {name} FROM {db}.{schema.EVENTS} FINAL WHERE event_id = 'edge-{index}'")
    if isinstance(value, datetime):
        got = _utc(got)
    assert got == value


@pytest.mark.parametrize("changes", [{"seq": 2**32}, {"seq": 10**30}, {"channel": 256}, {"kafka_offset": -1}])
def test_values_the_check_refuses_are_refused_by_the_store_too(store, changes):
    client, db = store
    row = event_row(event_id="refused", **changes)
    assert columns.row_problem(schema.EVENTS, COLUMNS[schema.EVENTS], row) is not None
    with pytest.raises(StoreError):
        insert(client, f"{db}.{schema.EVENTS}", [row], COLUMNS[schema.EVENTS], token=f"refused:{changes}")


def test_migrating_again_changes_nothing_and_the_ledger_has_each_migration_once(store):
    client, db = store
    assert migrations.migrate(client, db) == []
    _, rows = query(client, f"SELECT version, count() FROM {db}.{migrations.LEDGER} FINAL GROUP BY version "
                            "ORDER BY version")
    assert rows == [(m.version, 1) for m in migrations.MIGRATIONS]


def test_every_table_keeps_the_rules_of_the_store(store):
    client, db = store
    _, tables = query(client, "SELECT name, engine, create_table_query FROM system.tables WHERE database = %(db)s",
                      {"db": db})
    merge_trees = [(name, ddl) for name, engine, ddl in tables if engine.endswith("MergeTree")]
    assert {history_schema.PER_MINUTE, history_schema.PER_DAY, history_schema.DOSSIERS} <= {n for n, _ in merge_trees}
    assert [n for n, ddl in merge_trees if "non_replicated_deduplication_window = 10000" not in ddl] == []
    _, cols = query(client, "SELECT table, name, type FROM system.columns WHERE database = %(db)s", {"db": db})
    times = [(t, n, ty) for t, n, ty in cols if "DateTime" in ty]
    assert times and [c for c in times if "DateTime64(3, 'UTC')" not in c[2]] == []
    communes = [(t, n, ty) for t, n, ty in cols if n.endswith("commune_code") or n == "code"]
    assert communes and [c for c in communes if "String" not in c[2]] == []


def dossier_row(dossier_id: str, version: int, status: int, sla: str | None) -> list:
    values = {name: None for name in COLUMNS[history_schema.DOSSIERS]}
    values.update(dossier_id=dossier_id, status=status, commune_code="00004", handling_commune_code="00004",
                  procedure_code="1.001193", field="Hộ tịch", channel=1, sla_class=sla, escalated=False,
                  paused=False, supplement_count=0, extension_count=0, last_seq=version // 8,
                  source_partition=3, version=version, kafka_offset=version)
    return list(values.values())


def test_the_dossiers_table_keeps_the_highest_version_whatever_the_order_of_arrival(store):
    client, db = store
    table = f"{db}.{history_schema.DOSSIERS}"
    for token, row in (("d:3", dossier_row("D-contract", 3 * 8 + 3, 4, "overdue")),
                       ("d:1", dossier_row("D-contract", 1 * 8 + 1, 2, "within_due")),
                       ("d:2", dossier_row("D-contract", 2 * 8 + 2, 4, "due_soon"))):
        insert(client, table, [row], COLUMNS[history_schema.DOSSIERS], token=token)
    _, rows = query(client, f"SELECT status, sla_class, commune_code FROM {db}.{history_schema.DOSSIERS_NOW} "
                            "WHERE dossier_id = 'D-contract'")
    assert rows == [(4, "overdue", "00004")]  # the commune code keeps its leading zeros


def test_an_event_stored_twice_is_counted_once_with_and_without_final(store):
    client, db = store

    def counts() -> tuple[int, int, int]:
        _, [(unique,)] = query(client, f"SELECT count() FROM {db}.{history_schema.EVENTS_UNIQUE} "
                                       "WHERE event_id = 'ev-twice'")
        _, [(minute,)] = query(client, f"SELECT sum(events) FROM {db}.{history_schema.PER_MINUTE_COUNTS} WHERE "
                                       "minute = %(m)s AND commune_code = '18073'", {"m": T.replace(tzinfo=None)})
        _, [(day,)] = query(client, f"SELECT sum(events) FROM {db}.{history_schema.PER_DAY_COUNTS} WHERE "
                                    "day = '2026-11-05' AND commune_code = '18073' AND event_type = 'submitted'")
        return unique, minute, day

    before = counts()
    row = event_row(event_id="ev-twice", kafka_offset=11)
    again = event_row(event_id="ev-twice", kafka_offset=12)  # the same event at a later offset
    insert(client, f"{db}.{schema.EVENTS}", [row], COLUMNS[schema.EVENTS], token="twice:1")
    insert(client, f"{db}.{schema.EVENTS}", [again], COLUMNS[schema.EVENTS], token="twice:2")
    after = counts()
    assert before[0] == 0 and after == (1, before[1] + 1, before[2] + 1)


def test_the_read_only_role_is_made_where_the_store_keeps_accounts(store):
    client, db = store
    _, [(recorded,)] = query(client, f"SELECT count() FROM {db}.{migrations.LEDGER} FINAL WHERE version = 6")
    assert recorded == 1  # applied, or recorded as nothing to do on a store without accounts
    if migrations.manages_accounts(client):  # a server: the role exists and may only read this database
        role = migrations.reader_role(db)
        _, grants = query(client, "SELECT access_type, database FROM system.grants WHERE role_name = %(r)s",
                          {"r": role})
        assert grants == [("SELECT", db)]
