"""The cluster schema (``sinks.cluster``) on a one-shard ClickHouse cluster inside chDB, in a process of its own.

Usage: ``python -m tests.integration.one_shard_cluster STORE CONFIG`` prints a JSON report.

CONFIG declares the cluster ``ioc_cluster`` (one shard: this process), the
``{shard}``/``{replica}`` macros and an in-memory Keeper. chDB runs no
distributed DDL queue, so ``ON CLUSTER`` is left out of every statement here,
and its Replicated tables stay read-only (no replication threads). So:

1. every generated CREATE runs as generated in ``ioc_replicated``: the engine
   itself checks the Replicated engines, their Keeper paths and the Distributed
   tables;
2. in ``ioc_cl`` the same statements run with each Replicated engine replaced
   by its plain one (same arguments after path and replica), Distributed tables
   as generated. The rows of a seeded single-server store (``ioc``) are copied
   in through the Distributed tables, and every view is read on both sides.

It runs apart from the test process because its chDB engine needs that config.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date

import clickhouse_connect

from producers.simulator import SimulationConfig
from sinks import cluster, migrations
from tests.integration.panel_seed import seed_store

CLUSTER = "ioc_cluster"
REPLICATED = re.compile(r"ENGINE = Replicated(\w*MergeTree)\('/clickhouse/tables/\{shard\}/\{database\}/\{table\}', "
                        r"'\{replica\}'(?:, )?")
SEED = SimulationConfig(communes=3, dossiers=300, seed=11, start=date(2026, 11, 2), days=6)

CONFIG = f"""<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><{CLUSTER}><shard><replica><host>localhost</host><port>9000</port></replica></shard></{CLUSTER}>
  </remote_servers>
  <macros><shard>01</shard><replica>r1</replica></macros>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
</clickhouse>
"""


# chDB keeps no accounts: the role statements are checked by EXPLAIN AST only (test_cluster_schema).
ACCOUNTS = ("CREATE ROLE", "GRANT")


def no_on_cluster(statement: str) -> str:
    return statement.replace(f" ON CLUSTER {CLUSTER}", "")


def plain(statement: str) -> str:
    """The statement with plain MergeTree engines: what one shard holds, without replication."""
    return REPLICATED.sub(lambda m: f"ENGINE = {m[1]}(", statement).replace(
        "replicated_deduplication_window", "non_replicated_deduplication_window")


def rows(client, sql: str) -> list[list]:  # type: ignore[no-untyped-def]
    return [[str(v) for v in r] for r in client.query(sql).result_rows]


def seed(client) -> None:  # type: ignore[no-untyped-def]
    """The pipeline's rows, plus counters of a source partition voided by a later rebuild's epoch."""
    seed_store(client, "ioc", SEED)
    client.command("INSERT INTO ioc.backlog_partition SELECT * REPLACE (1 AS source_partition, 1 AS version) "
                   "FROM ioc.backlog_partition WHERE source_partition = 0")
    client.command("INSERT INTO ioc.throughput_partition SELECT * REPLACE (2 AS source_partition, 3 AS version) "
                   "FROM ioc.throughput_partition WHERE source_partition = 0")
    client.command("INSERT INTO ioc.counter_epochs VALUES (1, 2), (2, 3)")  # voids partition 1, keeps partition 2
    client.command("INSERT INTO ioc.event_deliveries SELECT event_id, dossier_id, commune_code, occurred_at, "
                   "occurred_at + toIntervalSecond(cityHash64(event_id) % 900), cityHash64(event_id) % 7 = 0, "
                   "kafka_partition, kafka_offset FROM ioc.dossier_events")
    for version, status in (("0", "NULL"), ("max(seq)", "toUInt8(max(seq))")):  # two versions: FINAL keeps one
        client.command("INSERT INTO ioc.dossiers (dossier_id, status, commune_code, handling_commune_code, "
                       "procedure_code, field, channel, escalated, paused, supplement_count, extension_count, "
                       "last_seq, source_partition, version, kafka_offset) "
                       f"SELECT dossier_id, {status}, any(commune_code), any(handling_commune_code), "
                       f"any(procedure_code), '', any(channel), false, false, 0, 0, max(seq), 0, {version}, 0 "
                       "FROM ioc.dossier_events GROUP BY dossier_id")


def copy_through_distributed(client) -> list[str]:  # type: ignore[no-untyped-def]
    """Every table of ``ioc`` that is not a materialized view's target, into ``ioc_cl`` by its Distributed table."""
    targets = {m for (q,) in client.query("SELECT create_table_query FROM system.tables WHERE database = 'ioc' "
                                          "AND engine = 'MaterializedView'").result_rows
               for m in re.findall(r"\bTO ioc\.(\w+)", q)}
    copied = []
    for (table,) in client.query("SELECT name FROM system.tables WHERE database = 'ioc' AND engine LIKE '%MergeTree' "
                                 "ORDER BY name").result_rows:
        if table in targets or table == migrations.LEDGER:
            continue
        columns = ", ".join(f"`{c}`" for (c,) in client.query(
            f"SELECT name FROM system.columns WHERE database = 'ioc' AND table = '{table}' ORDER BY position"
        ).result_rows)
        client.command(f"INSERT INTO ioc_cl.{table} ({columns}) SELECT {columns} FROM ioc.{table} "
                       "SETTINGS distributed_foreground_insert = 1")
        copied.append(table)
    return copied


def tables(client, database: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """What the engine says each table of the database is: engine, keys, columns."""
    out = {}
    for name, engine, full, sorting, partition in client.query(
            "SELECT name, engine, engine_full, sorting_key, partition_key FROM system.tables "
            f"WHERE database = '{database}'").result_rows:
        columns = client.query(f"SELECT name, type FROM system.columns WHERE database = '{database}' "
                               f"AND table = '{name}' ORDER BY position").result_rows
        out[name] = {"engine": engine, "engine_full": full, "sorting_key": sorting, "partition_key": partition,
                     "columns": [list(c) for c in columns]}
    return out


def views(client) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    out = {}
    names = client.query("SELECT name FROM system.tables WHERE database = 'ioc' AND engine = 'View'").result_rows
    for (view,) in names:
        single, clustered = (rows(client, f"SELECT * FROM {db}.{view} ORDER BY ALL") for db in ("ioc", "ioc_cl"))
        out[view] = {"rows": len(single), "cluster_rows": len(clustered), "equal": single == clustered}
    return out


def guard(client) -> dict:  # type: ignore[no-untyped-def]
    """A single-server migrate on the cluster's store, with a migration left pending, must refuse."""
    found = {"ioc": migrations.ledger_cluster(client, "ioc"), "ioc_cl": migrations.ledger_cluster(client, "ioc_cl")}
    client.command(f"DELETE FROM ioc_cl.{migrations.LEDGER}_local WHERE version = {migrations.LATEST}")
    try:
        migrations.migrate(client, "ioc_cl")
        refused = None
    except migrations.ClusterStore as exc:
        refused = str(exc)
    return {"ledger_cluster": found, "refused": refused}


def replicated(client) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """The generated CREATEs as they are; dropped afterwards, since tables that never started replicating
    do not shut down cleanly with the engine."""
    for statement in cluster.statements("ioc_replicated", CLUSTER):
        if statement.startswith("CREATE") and not statement.startswith(ACCOUNTS):
            client.command(no_on_cluster(statement))
    created = tables(client, "ioc_replicated")
    client.command("DROP DATABASE ioc_replicated SYNC")
    return created


def main(store: str, config: str) -> None:
    client = clickhouse_connect.get_client(dsn=f"chdb://{store}", chdb_options={"config-file": config})
    try:
        seed(client)
        created = replicated(client)
        for statement in cluster.statements("ioc_cl", CLUSTER):
            if not statement.startswith(ACCOUNTS):
                client.command(plain(no_on_cluster(statement)))
        report = {
            "replicated": created,
            "single": tables(client, "ioc"),
            "one_shard": tables(client, "ioc_cl"),
            "copied": copy_through_distributed(client),
            "views": views(client),
            "ledger": [rows(client, f"SELECT version, name, checksum FROM {db}.{migrations.LEDGER} FINAL "
                                    "ORDER BY version") for db in ("ioc", "ioc_cl")],
            "guard": guard(client),
        }
        json.dump(report, sys.stdout)
        sys.stdout.flush()
    finally:
        client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
