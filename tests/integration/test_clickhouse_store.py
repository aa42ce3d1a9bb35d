"""The ClickHouse schema on the embedded engine (chDB): deduplicated inserts and the counter views."""

from datetime import datetime, timezone

import pytest

from onestop import events
from onestop.settings import Settings
from sinks import columns, schema
from sinks.clickhouse import StoreError, connect, ensure_schema, insert, query
from sinks.rows import COLUMNS

pytestmark = pytest.mark.integration
T = datetime(2026, 11, 5, 3, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("chdb-home"), clickhouse_dsn="")
    client = connect(settings)
    ensure_schema(client, settings.clickhouse_database)
    yield client, settings.clickhouse_database
    client.close()


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
    if isinstance(value, datetime):  # chDB answers in UTC without a zone
        got = got.replace(tzinfo=timezone.utc)
    assert got == value


@pytest.mark.parametrize("changes", [{"seq": 2**32}, {"seq": 10**30}, {"channel": 256}, {"kafka_offset": -1}])
def test_values_the_check_refuses_are_refused_by_the_store_too(store, changes):
    client, db = store
    row = event_row(event_id="refused", **changes)
    assert columns.row_problem(schema.EVENTS, COLUMNS[schema.EVENTS], row) is not None
    with pytest.raises(StoreError):
        insert(client, f"{db}.{schema.EVENTS}", [row], COLUMNS[schema.EVENTS], token=f"refused:{changes}")
