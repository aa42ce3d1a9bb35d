"""``onestop db migrate`` and ``onestop db status`` on a real chDB store in a temporary ONESTOP_HOME."""

from __future__ import annotations

import re

import clickhouse_connect
import pytest
from typer.testing import CliRunner

from onestop.settings import Settings, get_settings
from onestop_cli import app
from sinks.migrations import LATEST, MIGRATIONS
from sinks.store_owner import StoreOwner

pytestmark = pytest.mark.integration
DB = "ioc"
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh ONESTOP_HOME with the embedded store (nothing in it yet), seen by the CLI."""
    monkeypatch.setenv("ONESTOP_HOME", str(tmp_path))
    monkeypatch.setenv("ONESTOP_CLICKHOUSE_DSN", "")
    monkeypatch.setenv("ONESTOP_CLICKHOUSE_DATABASE", DB)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def db(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["db", *args])


def store_rows(home, sql: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    client = clickhouse_connect.get_client(dsn=f"chdb://{home / 'chdb'}")
    try:
        return [tuple(r) for r in client.query(sql).result_rows]
    finally:
        client.close()


def store_command(home, sql: str) -> None:  # type: ignore[no-untyped-def]
    client = clickhouse_connect.get_client(dsn=f"chdb://{home / 'chdb'}")
    try:
        client.command(sql)
    finally:
        client.close()


def status_lines(output: str) -> dict[int, str]:
    """The first line of each migration's row in the status table, by version."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = line
    return rows


def test_migrate_twice_applies_everything_once_and_then_nothing(home):
    first, second = db("migrate"), db("migrate")
    assert first.exit_code == 0, first.output
    assert re.findall(r"^applied migration (\d+):", first.stdout, re.M) == [str(m.version) for m in MIGRATIONS]
    assert second.exit_code == 0, second.output
    assert "applied migration" not in second.stdout and "up to date" in second.stdout
    # No FINAL: a second ledger row for a version would show here before any merge.
    assert store_rows(home, f"SELECT version, count() FROM {DB}.schema_migrations GROUP BY version ORDER BY version") \
        == [(m.version, 1) for m in MIGRATIONS]


def test_migrate_creates_what_the_sink_reads(home):
    assert db("migrate").exit_code == 0
    tables = {name for (name,) in store_rows(home, f"SELECT name FROM system.tables WHERE database = '{DB}'")}
    assert {"dossier_events", "dossiers", "backlog_now", "events_per_day_mv", "schema_migrations"} <= tables
    assert store_rows(home, f"SELECT count() > 3000 FROM {DB}.communes FINAL") == [(1,)]


def test_status_says_pending_before_and_when_applied_after(home):
    before = db("status")
    assert before.exit_code == 0, before.output
    rows = status_lines(before.stdout)
    assert sorted(rows) == [m.version for m in MIGRATIONS]
    assert all("pending" in line for line in rows.values())
    assert f"0 applied, {len(MIGRATIONS)} pending" in before.stdout
    assert not (home / "chdb").exists()  # status only reads: it made no store

    db("migrate")
    after = db("status")
    rows = status_lines(after.stdout)
    assert sorted(rows) == [m.version for m in MIGRATIONS]
    assert all(STAMP.search(line) and "pending" not in line and "ok" in line for line in rows.values())
    assert f"{len(MIGRATIONS)} applied, 0 pending" in after.stdout
    assert "warning" not in after.output


def test_status_warns_when_an_applied_migration_was_edited(home):
    db("migrate")
    store_command(home, f"INSERT INTO {DB}.schema_migrations VALUES (2, 'edited', 'not-the-checksum', now64(3) + 1)")
    result = db("status")
    assert result.exit_code == 0
    assert "differs" in status_lines(result.stdout)[2]
    assert "differs" not in status_lines(result.stdout)[1]
    assert re.search(r"warning:.*migration 2\b", result.stderr)


def test_migrate_refuses_a_store_whose_schema_is_newer(home):
    db("migrate")
    store_command(home, f"INSERT INTO {DB}.schema_migrations VALUES ({LATEST + 1}, 'newer', 'x', now64(3))")
    result = db("migrate")
    assert result.exit_code == 3
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an exception escaping the command
    assert f"at migration {LATEST + 1}, newer than this onestop-ioc knows (up to {LATEST})" in result.stderr
    assert "Traceback" not in result.output
    status = db("status")
    assert "unknown to this onestop" in status_lines(status.stdout)[LATEST + 1]
    assert "newer than this onestop-ioc" in status.stderr


def test_migrate_while_the_sink_owns_the_store_says_so_and_returns(home):
    db("migrate")
    with StoreOwner(Settings(home=home, clickhouse_dsn="")):
        result = db("migrate")
        status = db("status")
    assert result.exit_code == 0, result.output
    assert re.search(r"up to date .*the running sink \(pid \d+\) owns the store", result.stdout)
    assert all(STAMP.search(line) for line in status_lines(status.stdout).values())


def test_migrate_while_an_older_sink_owns_the_store_names_what_is_pending(home):
    db("migrate")
    store_command(home, f"DELETE FROM {DB}.schema_migrations WHERE version = {LATEST}")
    with StoreOwner(Settings(home=home, clickhouse_dsn="")):
        result = db("migrate")
    assert result.exit_code == 1
    assert re.search(rf"owns the store .* migrations {LATEST} are pending", result.stderr.replace("\n", " "))
    assert store_rows(home, f"SELECT count() FROM {DB}.schema_migrations WHERE version = {LATEST}") == [(0,)]


def test_applying_to_a_cluster_needs_a_server(home):
    result = db("migrate", "--cluster", "ioc_cluster", "--apply")
    assert result.exit_code == 2
    assert "ONESTOP_CLICKHOUSE_DSN" in result.stderr and "server" in result.stderr
    assert not (home / "chdb").exists()


def test_a_reader_account_needs_a_server(home, monkeypatch):
    monkeypatch.setenv("CLICKHOUSE_READER_PASSWORD", "s3cret")
    result = db("migrate", "--reader-user", "grafana_reader")
    assert result.exit_code == 2
    assert "no accounts" in result.stderr
