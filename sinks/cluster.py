"""The store's schema on a ClickHouse cluster: the same migrations, as Replicated local tables behind Distributed ones.

Every table ``T`` of the single-server schema becomes two tables, created ``ON CLUSTER``:

- ``T_local`` on every node: the same columns, order and partitioning, with the
  Replicated variant of its engine (``ReplicatedReplacingMergeTree(path,
  '{replica}', version)``, ``ReplicatedAggregatingMergeTree(path, '{replica}')``),
  the ZooKeeper/Keeper path ``/clickhouse/tables/{shard}/{database}/{table}``
  and ``replicated_deduplication_window`` in place of the non-replicated one, so
  a retried insert with the same ``insert_deduplication_token`` is still dropped;
- ``T`` itself: ``Distributed(cluster, database, T_local, sharding key)``. Writers
  and readers keep using the names they know.

The sharding keys (``SHARDING``) put every row that ClickHouse must see together
on one shard: the rows that ReplacingMergeTree deduplicates (same sorting key),
and the rows the views join. A table without a key is an error, so a new
migration cannot reach a cluster without a decision.

Views read the Distributed tables, so they answer for the whole cluster. A join
inside a view is evaluated shard by shard against the right-hand ``_local``
table: that is exact only if both sides are sharded on the same key, which the
generator checks. Materialized views fire on each shard's inserts: they read
the local source and write the local target. ``ADD|DROP|MODIFY|RENAME|COMMENT
COLUMN`` alters the local and the Distributed table; other alters (settings,
projections) concern storage, so the local table only.

Pure string generation: nothing here talks to a server.
"""

from __future__ import annotations

import re

from sinks import history_schema as history, migrations, practice_schema as practice, schema
from sinks.migrations import LEDGER, Migration

ZOOKEEPER_PATH = "'/clickhouse/tables/{shard}/{database}/{table}'"
REPLICA = "'{replica}'"
LOCAL = "_local"

_BY_DOSSIER = "cityHash64(dossier_id)"
_BY_PARTITION = "source_partition"

# Why each key: docs/clickhouse.md#sharding-keys.
SHARDING: dict[str, str] = {
    # Every row of one dossier on one shard: duplicates merge, per-dossier queries stay local.
    schema.EVENTS: _BY_DOSSIER,
    history.DOSSIERS: _BY_DOSSIER,
    schema.ALERTS: _BY_DOSSIER,  # alert_id is stable per dossier, kind and deadline
    practice.DELIVERIES: _BY_DOSSIER,  # all deliveries of one event, for its first arrival
    # The worker's counters: every version of a key, and the partition's epoch, on one shard.
    schema.BACKLOG_PARTS: _BY_PARTITION,
    schema.THROUGHPUT_PARTS: _BY_PARTITION,
    schema.ONTIME_PARTS: _BY_PARTITION,
    practice.SAMEDAY_PARTS: _BY_PARTITION,
    practice.SERVICE_PARTS: _BY_PARTITION,
    practice.SATISFACTION_PARTS: _BY_PARTITION,
    schema.EPOCHS: _BY_PARTITION,
    # A rejected record may have no dossier id; a retry of it has the same Kafka partition.
    schema.DEAD_LETTERS: "kafka_partition",
    schema.COMMUNES: "cityHash64(code)",
    # Filled by the materialized views on each shard; uniqExact states merge exactly across shards,
    # so a rebuild written through the Distributed table may spread its rows anywhere.
    history.PER_MINUTE: "rand()",
    history.PER_DAY: "rand()",
    LEDGER: "version",
}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CREATE_TABLE = re.compile(
    r"CREATE TABLE IF NOT EXISTS (?P<db>\w+)\.(?P<table>\w+) \((?P<columns>.*)\)\s*"
    r"ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^()]*)\))?(?P<rest>.*)", re.S)
_CREATE_VIEW = re.compile(r"CREATE VIEW IF NOT EXISTS (?P<db>\w+)\.(?P<view>\w+) AS\b(?P<body>.*)", re.S)
_CREATE_MV = re.compile(
    r"CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<db>\w+)\.(?P<view>\w+) TO (?P=db)\.(?P<target>\w+) AS\b(?P<body>.*)",
    re.S)
_ALTER = re.compile(r"ALTER TABLE (?P<db>\w+)\.(?P<table>\w+) (?P<command>.*)", re.S)
_CREATE_ROLE = re.compile(r"CREATE ROLE IF NOT EXISTS (?P<role>\w+)(?P<rest>.*)", re.S)
_GRANT = re.compile(r"GRANT (?P<what>\w+) ON (?P<db>\w+)\.\* TO (?P<role>\w+)", re.S)
_COLUMN_ALTER = re.compile(r"(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b")


class NotClusterable(ValueError):
    """A statement the cluster layout does not know how to place; the migration needs a decision."""


def cluster_name(name: str) -> str:
    """The cluster as an identifier; ClickHouse takes other names backquoted."""
    if not name:
        raise ValueError("the cluster name is empty")
    return name if _IDENTIFIER.fullmatch(name) else "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _tables() -> frozenset[str]:
    """Every table the migrations create (the ledger included): all of them get a _local twin."""
    names = {LEDGER}
    for migration in migrations.MIGRATIONS:
        for statement in migration.statements("db"):
            found = _CREATE_TABLE.match(statement)
            if found:
                names.add(found["table"])
    return frozenset(names)


class ClusterLayout:
    """``sinks.migrations.Layout`` for a cluster: every statement ``ON CLUSTER``, tables local + Distributed."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster_name(cluster)
        self._on = f"ON CLUSTER {self.cluster}"
        self._tables = _tables()

    def create_database(self, database: str) -> str:
        _check_database(database)
        return f"CREATE DATABASE IF NOT EXISTS {database} {self._on}"

    def create_ledger(self, database: str) -> list[str]:
        return self.rewrite(migrations.LEDGER_DDL.format(db=database), database)

    def statements(self, migration: Migration, database: str) -> list[str]:
        _check_database(database)
        out: list[str] = []
        for statement in migration.statements(database):
            out += self.rewrite(statement, database)
        return out

    def record(self, migration: Migration, database: str) -> str:
        # Through the Distributed ledger; in the foreground, so the next read of the ledger sees it.
        return migrations.ledger_insert(migration, database, settings="distributed_foreground_insert = 1")

    def rewrite(self, statement: str, database: str) -> list[str]:
        """One single-server statement as the statements that do the same on the cluster."""
        statement = statement.strip()
        role = _CREATE_ROLE.fullmatch(statement)
        if role:  # access entities are replicated by ON CLUSTER like the tables
            return [f"CREATE ROLE IF NOT EXISTS {role['role']} {self._on}{role['rest']}"]
        grant = _GRANT.fullmatch(statement)
        if grant:
            if grant["db"] != database:
                raise NotClusterable(f"statement outside the database {database}: {statement[:120]}")
            return [f"GRANT {self._on} {grant['what']} ON {database}.* TO {grant['role']}"]
        for pattern, place in ((_CREATE_TABLE, self._table), (_CREATE_MV, self._materialized),
                               (_CREATE_VIEW, self._view), (_ALTER, self._alter)):
            found = pattern.fullmatch(statement)
            if found:
                if found["db"] != database:
                    raise NotClusterable(f"statement outside the database {database}: {statement[:120]}")
                return place(found)
        raise NotClusterable(f"no cluster form for this statement: {statement[:200]}")

    def _table(self, m: re.Match[str]) -> list[str]:
        db, table = m["db"], m["table"]
        key = SHARDING.get(table)
        if key is None:
            raise NotClusterable(f"table {table} has no sharding key: add it to sinks.cluster.SHARDING")
        args = ", ".join([ZOOKEEPER_PATH, REPLICA] + ([m["args"].strip()] if m["args"] and m["args"].strip() else []))
        rest = m["rest"].replace("non_replicated_deduplication_window", "replicated_deduplication_window")
        return [
            f"CREATE TABLE IF NOT EXISTS {db}.{table}{LOCAL} {self._on} ({m['columns']})\n"
            f"ENGINE = Replicated{m['engine']}({args}){rest}",
            f"CREATE TABLE IF NOT EXISTS {db}.{table} {self._on} AS {db}.{table}{LOCAL}\n"
            f"ENGINE = Distributed({self.cluster}, {db}, {table}{LOCAL}, {key})",
        ]

    def _view(self, m: re.Match[str]) -> list[str]:
        body = self._colocated_joins(m["db"], m["view"], m["body"])
        return [f"CREATE VIEW IF NOT EXISTS {m['db']}.{m['view']} {self._on} AS{body}"]

    def _materialized(self, m: re.Match[str]) -> list[str]:
        db, target = m["db"], m["target"]
        if target not in self._tables:
            raise NotClusterable(f"materialized view {m['view']} writes {target}, which is not a table")
        if re.search(r"\bJOIN\b", m["body"]):
            raise NotClusterable(f"materialized view {m['view']} joins: it would see only its shard's rows")
        body = self._local_names(db, m["body"])
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{m['view']} {self._on} "
                f"TO {db}.{target}{LOCAL} AS{body}"]

    def _alter(self, m: re.Match[str]) -> list[str]:
        db, table, command = m["db"], m["table"], m["command"]
        if table not in self._tables:
            raise NotClusterable(f"ALTER of {table}, which no migration creates")
        local = f"ALTER TABLE {db}.{table}{LOCAL} {self._on} {command}"
        if _COLUMN_ALTER.match(command):
            return [local, f"ALTER TABLE {db}.{table} {self._on} {command}"]
        return [local]

    def _local_names(self, db: str, sql: str) -> str:
        tables = self._tables
        return re.sub(rf"\b{db}\.(\w+)\b", lambda t: f"{db}.{t[1]}{LOCAL}" if t[1] in tables else t[0], sql)

    def _colocated_joins(self, db: str, view: str, body: str) -> str:
        """The right side of each join reads its shard's local table; both sides must share a sharding key."""
        if re.search(rf"\bJOIN {db}\.", body):
            raise NotClusterable(f"view {view} joins a table directly; join a subquery on it instead")
        out, at = [], 0
        for join in re.finditer(rf"\bJOIN \(SELECT\b[^;]*?\bFROM {db}\.(\w+)", body):
            right = join[1]
            left = re.findall(rf"\bFROM {db}\.(\w+)", body[:join.start()])
            if right not in self._tables or not left or left[-1] not in self._tables:
                raise NotClusterable(f"view {view}: a join that is not between two tables ({right})")
            if SHARDING[left[-1]] != SHARDING[right]:
                raise NotClusterable(f"view {view} joins {left[-1]} and {right}, which are sharded differently "
                                     f"({SHARDING[left[-1]]} and {SHARDING[right]})")
            out.append(body[at:join.start(1)] + right + LOCAL)
            at = join.end(1)
        return "".join(out) + body[at:]


def _check_database(database: str) -> None:
    if not _IDENTIFIER.fullmatch(database):
        raise ValueError(f"the database name {database!r} is not a plain identifier")


def statements(database: str, cluster: str) -> list[str]:
    """Every statement, in order, that builds the whole schema on the cluster and records it in the ledger.

    Each is idempotent (``IF NOT EXISTS``, deduplicated ledger inserts), so the whole list may run again.
    """
    layout = ClusterLayout(cluster)
    out = [layout.create_database(database), *layout.create_ledger(database)]
    for migration in migrations.MIGRATIONS:
        out += layout.statements(migration, database)
        out.append(layout.record(migration, database))
    return out


def script(database: str, cluster: str) -> str:
    """The statements as one file for ``clickhouse-client --multiquery``."""
    body = ";\n\n".join(statements(database, cluster))
    return (f"-- onestop-ioc schema for the ClickHouse cluster {cluster}, database {database}, "
            f"migrations 1 to {migrations.LATEST}.\n"
            "-- Idempotent: every statement may run again. Needs the macros {shard} and {replica} on every node.\n\n"
            f"{body};\n")
