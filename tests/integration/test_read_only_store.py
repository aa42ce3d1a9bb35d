"""Read-only queries on the embedded store: the engine's readonly setting, the statement check, the store owner.

Every refusal is followed by a look at the store through the writer's own
connection: the table is still there with the rows it had, and no file was
written.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from onestop.settings import Settings
from sinks.clickhouse import StoreError, connect
from sinks.query_service import open_reader, query_rows
from sinks.readonly import ChdbReader, ReadRefused, chdb_path
from sinks.store_owner import OwnerReader, StoreOwner, advert_path, find_owner

pytestmark = pytest.mark.integration
ROWS = 5000


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one table of ROWS rows, written through the writer's kind of client."""
    settings = Settings(home=tmp_path_factory.mktemp("readonly-home"), clickhouse_dsn="")
    client = connect(settings)
    client.command("CREATE DATABASE IF NOT EXISTS ioc")
    client.command("CREATE TABLE IF NOT EXISTS ioc.kept (n UInt64, s String) ENGINE = MergeTree ORDER BY n")
    client.command(f"INSERT INTO ioc.kept SELECT number, toString(number) FROM numbers({ROWS})")
    yield settings, client
    client.close()


def unharmed(client) -> None:
    assert client.query("SELECT count(), sum(n) FROM ioc.kept").result_rows == [(ROWS, ROWS * (ROWS - 1) // 2)]
    assert client.query("SELECT getSetting('readonly')").result_rows == [(0,)]  # the writer may still write


ENGINE_REFUSES = [
    "INSERT INTO ioc.kept VALUES (1, 'x')",
    "ALTER TABLE ioc.kept DELETE WHERE 1",
    "DROP TABLE ioc.kept",
    "TRUNCATE TABLE ioc.kept",
    "CREATE TABLE ioc.other (a UInt8) ENGINE = Memory",
    "OPTIMIZE TABLE ioc.kept FINAL",
    "SET readonly = 0",
    "SET max_memory_usage = 1",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
]


@pytest.mark.parametrize("sql", ENGINE_REFUSES)
def test_the_engine_itself_refuses_writes_and_settings_changes_on_the_read_connection(store, sql):
    settings, client = store
    reader = ChdbReader(chdb_path(settings.effective_clickhouse_dsn))
    try:
        with pytest.raises(Exception, match=r"READONLY|readonly mode"):
            reader.connection.query(sql)  # the handle without the statement check: ClickHouse's readonly = 1
    finally:
        reader.close()
    unharmed(client)


@pytest.mark.parametrize("sql, why", [
    ("INSERT INTO ioc.kept VALUES (1, 'x')", "INSERT is not a read"),
    ("DROP TABLE ioc.kept", "DROP is not a read"),
    ("ALTER TABLE ioc.kept DELETE WHERE 1", "ALTER is not a read"),
    ("SYSTEM STOP MERGES", "SYSTEM is not a read"),  # readonly = 1 alone lets this through
    ("KILL QUERY WHERE 1", "KILL is not a read"),  # and this
    ("SELECT 1; DROP TABLE ioc.kept", "one statement at a time"),  # chDB runs every statement of a string
    ("SELECT 1 SETTINGS readonly = 0", "Cannot modify 'readonly'"),
    ("SELECT * FROM ioc.kept SETTINGS max_threads = 64", "Cannot modify 'max_threads'"),
    ("SELECT 1 FORMAT CSV", "leave out the FORMAT clause"),
])
def test_the_read_path_refuses_with_a_clear_error(store, sql, why):
    settings, client = store
    reader = ChdbReader(chdb_path(settings.effective_clickhouse_dsn))
    try:
        with pytest.raises(ReadRefused, match=why):
            with reader.stream(sql):
                pass
    finally:
        reader.close()
    unharmed(client)


def test_into_outfile_is_refused_and_writes_no_file(store, tmp_path):
    settings, client = store
    target = tmp_path / "leak.csv"
    reader = ChdbReader(chdb_path(settings.effective_clickhouse_dsn))
    try:
        with pytest.raises(ReadRefused, match="INTO OUTFILE"):
            with reader.stream(f"SELECT * FROM ioc.kept INTO OUTFILE '{target}'"):
                pass
        # A string that merely mentions it is a read like any other.
        with reader.stream("SELECT 'INTO OUTFILE' AS words") as batches:
            assert batches.read_all().to_pylist() == [{"words": "INTO OUTFILE"}]
    finally:
        reader.close()
    assert not target.exists()
    unharmed(client)


def test_the_owner_answers_other_processes_and_refuses_writes(store):
    settings, client = store
    with StoreOwner(settings) as owner:
        advert = json.loads(advert_path(settings).read_text())
        assert advert["pid"] == os.getpid() and advert["url"] == owner.url
        assert stat.S_IMODE(advert_path(settings).stat().st_mode) == 0o600  # it holds the access token
        script = ("import sys; from onestop.settings import Settings; from sinks.query_service import open_reader, "
                  "query_rows; r = open_reader(Settings(home=sys.argv[1])); print(r.where); "
                  "print(query_rows(r, 'SELECT count() FROM ioc.kept')[1][0][0])")
        done = subprocess.run([sys.executable, "-c", script, str(settings.home)], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        where, count = done.stdout.strip().splitlines()
        assert where.startswith(f"the store owner (pid {os.getpid()})") and int(count) == ROWS
        with pytest.raises(ReadRefused, match="DROP is not a read"):
            with find_owner(settings).stream("DROP TABLE ioc.kept"):
                pass
        with pytest.raises(ReadRefused, match="Cannot modify"):
            with find_owner(settings).stream("SELECT 1 SETTINGS readonly = 0"):
                pass
    assert not advert_path(settings).exists()  # withdrawn on stop
    unharmed(client)


def test_the_owner_wants_its_token(store):
    settings, _ = store
    with StoreOwner(settings):
        advert = json.loads(advert_path(settings).read_text())
        stranger = OwnerReader({**advert, "token": "guessed"})
        with pytest.raises(StoreError, match="401"):
            stranger.health()


def test_a_failure_part_way_through_a_streamed_result_is_an_error_not_a_short_result(store):
    settings, _ = store
    with StoreOwner(settings):
        owner = find_owner(settings)
        # The first blocks go out before the failing row is computed.
        sql = "SELECT number, throwIf(number = 3000000, 'cut off') AS x FROM system.numbers LIMIT 4000000"
        rows = 0
        with pytest.raises(StoreError, match="broke off part-way"):
            with owner.stream(sql) as batches:
                for batch in batches:
                    rows += batch.num_rows
        assert 0 < rows < 4_000_000  # some batches arrived, then the error, not a clean end


def test_a_stale_advert_is_ignored_and_the_store_opened_directly(store, tmp_path):
    settings, _ = store
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    advert_path(settings).write_text(json.dumps({"pid": int(dead.stdout), "url": "http://127.0.0.1:9",
                                                 "token": "x", "store": chdb_path(settings.effective_clickhouse_dsn)}))
    reader = open_reader(settings)
    try:
        assert isinstance(reader, ChdbReader)
        assert query_rows(reader, "SELECT count() FROM ioc.kept")[1] == [(ROWS,)]
    finally:
        reader.close()
    assert not advert_path(settings).exists()


def test_a_missing_store_is_an_error_and_is_not_created(tmp_path: Path):
    settings = Settings(home=tmp_path / "nothing-here", clickhouse_dsn="")
    with pytest.raises(StoreError, match="no store at"):
        open_reader(settings, wait_s=0)
    assert not (tmp_path / "nothing-here" / "chdb").exists()
