"""The ClickHouse schema on the embedded engine (chDB): deduplicated inserts and the counter views."""

from datetime import datetime, timezone

import pytest

from onestop.settings import Settings
from sinks import schema
from sinks.clickhouse import connect, ensure_schema, insert, query
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
