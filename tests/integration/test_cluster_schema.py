"""The cluster schema (``sinks.cluster``), checked by the ClickHouse engine itself.

No cluster runs here. So: chDB parses every generated statement (``EXPLAIN
AST``) and writes it back (``formatQuerySingleLine``); the facts about the
layout are read from that parse and from a migrated single-server store, not
from the generator. Then a one-shard cluster inside chDB
(``one_shard_cluster.py``, a process of its own) creates the Replicated and
Distributed tables as generated and answers every view like the single store.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import clickhouse_connect
import pytest

from sinks import cluster, migrations
from sinks.readonly import literal

pytestmark = pytest.mark.integration
DB, CLUSTER = "ioc", "ioc_cluster"
ROOT = Path(__file__).resolve().parents[2]
ZOOKEEPER = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A chDB engine holding the single-server schema, migrated the ordinary way."""
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('single')}")
    migrations.migrate(client, DB)
    yield client
    client.close()


@pytest.fixture(scope="module")
def single(engine) -> dict[str, tuple[str, str]]:
    """Every table and view of the single-server store: name -> (engine, create_table_query)."""
    return {n: (e, q) for n, e, q in engine.query(
        f"SELECT name, engine, create_table_query FROM system.tables WHERE database = '{DB}'").result_rows}


@pytest.fixture(scope="module")
def formatted(engine) -> list[str]:
    """Each generated statement as the engine's parser writes it back, on one line."""
    return [engine.query(f"SELECT formatQuerySingleLine({literal(s)})").result_rows[0][0]
            for s in cluster.statements(DB, CLUSTER)]


def merge_tree_tables(single) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: eng for name, (eng, _) in single.items() if eng.endswith("MergeTree")}


def created(formatted: list[str], kind: str = "TABLE") -> dict[str, str]:
    out = {}
    for statement in formatted:
        found = re.match(rf"CREATE {kind} IF NOT EXISTS {DB}\.(\w+) ", statement)
        if found:
            out[found[1]] = statement
    return out


@pytest.mark.parametrize("name", [CLUSTER, "ioc-cluster"])
def test_every_generated_statement_parses(engine, name):
    statements = cluster.statements(DB, name)
    assert len(statements) > 40
    for statement in statements:
        engine.command(f"EXPLAIN AST {statement}")  # raises on a syntax error


def test_every_ddl_statement_is_on_the_cluster_and_the_rest_record_the_ledger(formatted):
    ddl = [s for s in formatted if s.startswith(("CREATE ", "ALTER ", "GRANT "))]
    others = [s for s in formatted if not s.startswith(("CREATE ", "ALTER ", "GRANT "))]
    assert any(s.startswith("GRANT ") for s in ddl)  # the read-only role's grant is replicated too
    assert ddl and all(re.search(rf" ON CLUSTER {CLUSTER}\b", s) for s in ddl)
    assert [re.match(rf"INSERT INTO {DB}\.schema_migrations \(", s) is not None for s in others] == \
        [True] * len(migrations.MIGRATIONS)


def test_every_merge_tree_table_is_replicated(formatted):
    tables = created(formatted)
    family = {name: s for name, s in tables.items() if re.search(r"ENGINE = \w*MergeTree", s)}
    assert family
    for name, statement in family.items():
        assert name.endswith("_local")
        assert re.search(rf"ENGINE = Replicated\w*MergeTree\({re.escape(ZOOKEEPER)}", statement), statement
        assert "non_replicated_deduplication_window" not in statement
        assert "replicated_deduplication_window = 10000" in statement


def test_every_table_of_the_single_store_has_a_local_twin_and_a_distributed_table(single, formatted):
    tables = created(formatted)
    expected = merge_tree_tables(single)
    assert set(tables) == {n for t in expected for n in (t, f"{t}_local")}
    for table, engine_name in expected.items():
        assert f"ENGINE = Replicated{engine_name}(" in tables[f"{table}_local"]
        assert re.search(rf"AS {DB}\.{table}_local ENGINE = Distributed\({CLUSTER}, {DB}, {table}_local, .+\)$",
                         tables[table]), tables[table]


def test_sharding_keys_keep_a_dossier_and_a_source_partition_on_one_shard(engine, single, formatted):
    keys = {t: re.search(r"Distributed\(\w+, \w+, \w+, (.+)\)$", s)[1] for t, s in created(formatted).items()
            if not t.endswith("_local")}
    columns: dict[str, dict[str, str]] = {}
    for table, column, type_ in engine.query(
            f"SELECT table, name, type FROM system.columns WHERE database = '{DB}'").result_rows:
        columns.setdefault(table, {})[column] = type_
    for table in merge_tree_tables(single):
        if columns[table].get("dossier_id") == "String":  # every row names its dossier
            assert keys[table] == "cityHash64(dossier_id)", table
        elif "source_partition" in columns[table]:  # the worker's counters and their epochs
            assert keys[table] == "source_partition", table
    assert {t for t, k in keys.items() if k == "cityHash64(dossier_id)"} == {
        "dossier_events", "dossiers", "alerts", "event_deliveries"}


def test_materialized_views_read_the_local_source_and_write_the_local_target(single, formatted):
    views = created(formatted, "MATERIALIZED VIEW")
    expected = {n: q for n, (e, q) in single.items() if e == "MaterializedView"}
    assert set(views) == set(expected)
    for name, query in expected.items():
        target = re.search(rf"\bTO {DB}\.(\w+)", query)[1]
        assert f" TO {DB}.{target}_local AS " in views[name]
        sources = re.findall(rf"\bFROM {DB}\.(\w+)", views[name])
        assert sources and all(s.endswith("_local") for s in sources)


def test_views_read_distributed_tables_but_join_on_the_local_shard(single, formatted):
    views = created(formatted, "VIEW")
    expected = {n: q for n, (e, q) in single.items() if e == "View"}
    assert set(views) == set(expected)
    for name, statement in views.items():
        local = re.findall(rf"\b{DB}\.\w+_local\b", statement)
        joined = re.findall(rf"JOIN \(SELECT [^()]*(?:\([^()]*\)[^()]*)*?FROM {DB}\.(\w+_local)\b", statement)
        assert len(joined) == expected[name].count("JOIN (SELECT"), name
        assert len(local) == len(joined), name  # nothing else reads a single shard's rows


def test_column_alters_reach_both_tables_and_storage_alters_the_local_one(formatted):
    alters = [s for s in formatted if s.startswith("ALTER ")]
    for migration in migrations.MIGRATIONS:
        for statement in migration.statements(DB):
            found = re.match(rf"ALTER TABLE {DB}\.(\w+) (ADD COLUMN IF NOT EXISTS (\w+)|.*)", statement, re.S)
            if not found:
                continue
            table, column = found[1], found[3]
            on = [s for s in alters if (column and f"`{column}`" in s) or (not column and found[2][:30] in s)]
            tables = sorted(re.match(r"ALTER TABLE \w+\.(\w+)", s)[1] for s in on)
            assert tables == (sorted([table, f"{table}_local"]) if column else [f"{table}_local"]), statement


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory) -> dict:
    from tests.integration.one_shard_cluster import CONFIG

    home = tmp_path_factory.mktemp("one-shard")
    (home / "config.xml").write_text(CONFIG, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "tests.integration.one_shard_cluster", str(home / "store"),
                           str(home / "config.xml")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_engine_creates_the_replicated_and_distributed_tables_as_generated(one_shard):
    single, made = one_shard["single"], one_shard["replicated"]
    for table, spec in single.items():
        if spec["engine"].endswith("MergeTree"):
            local = made[f"{table}_local"]
            assert local["engine"] == f"Replicated{spec['engine']}"
            assert local["engine_full"].startswith(f"Replicated{spec['engine']}('/clickhouse/tables/{{shard}}/"
                                                   f"ioc_replicated/{table}_local', '{{replica}}'")
            assert (local["sorting_key"], local["partition_key"]) == (spec["sorting_key"], spec["partition_key"])
            assert made[table]["engine"] == "Distributed"
        else:
            assert made[table]["engine"] == spec["engine"], table


def test_one_shard_tables_have_the_single_stores_columns(one_shard):
    single, shard = one_shard["single"], one_shard["one_shard"]
    for table, spec in single.items():
        if spec["engine"].endswith("MergeTree"):
            assert shard[f"{table}_local"]["columns"] == spec["columns"], table
            assert shard[table]["columns"] == spec["columns"], table


def test_every_view_answers_on_one_shard_as_on_the_single_store(one_shard):
    views = one_shard["views"]
    assert {v for v, s in one_shard["single"].items() if s["engine"] == "View"} == set(views)
    assert {v: s["equal"] for v, s in views.items()} == {v: True for v in views}
    busy = ("backlog_now", "backlog_by_commune", "throughput", "ontime", "dossiers_now", "dossier_events_unique",
            "events_per_day_counts", "events_per_minute_counts", "late_data", "satisfaction")
    assert all(views[v]["rows"] > 0 for v in busy), views


def test_the_ledger_on_the_cluster_records_what_the_single_store_records(one_shard):
    single, clustered = one_shard["ledger"]
    assert clustered == single and [int(r[0]) for r in single] == [m.version for m in migrations.MIGRATIONS]


def test_a_single_server_migrate_refuses_a_cluster_store(one_shard):
    guard = one_shard["guard"]
    assert guard["ledger_cluster"] == {"ioc": None, "ioc_cl": CLUSTER}
    assert guard["refused"] and f"--cluster {CLUSTER} --apply" in guard["refused"]
