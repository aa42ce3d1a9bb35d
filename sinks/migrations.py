"""The numbered schema migrations of the store, and the table that records which were applied.

Each migration is a list of idempotent statements (``IF NOT EXISTS``), so
applying one again, or applying the first ones to a store made before
migrations existed, changes nothing. ``migrate`` applies the pending ones in
order and records each in ``schema_migrations`` with a checksum of its
statements; it refuses a store whose recorded schema is newer than this code.

Add a migration by appending to ``MIGRATIONS``; never edit an applied one
(``onestop db status`` shows a changed checksum).

Where the statements go is a ``Layout``: ``SINGLE_SERVER`` runs them as written
(chDB or one server); ``sinks.cluster`` rewrites the same migrations for a
ClickHouse cluster and records them in the same ledger.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol, Sequence

from sinks import history_schema, panel_indexes, practice_schema, schema

log = logging.getLogger(__name__)

LEDGER = "schema_migrations"
LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {{db}}.{LEDGER} (
    version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree ORDER BY version
SETTINGS {schema.DEDUP}"""


class Client(Protocol):
    def command(self, cmd: str) -> object: ...
    def query(self, query: str, parameters: dict | None = None) -> object: ...


class SchemaTooNew(RuntimeError):
    """The store was migrated by a newer onestop than this one."""


class ClusterStore(RuntimeError):
    """The store is a ClickHouse cluster: its migrations must be applied in the cluster layout."""


class Layout(Protocol):
    """How the migrations become statements for one kind of store."""

    def create_database(self, database: str) -> str: ...

    def create_ledger(self, database: str) -> list[str]: ...

    def statements(self, migration: "Migration", database: str) -> list[str]:
        """One migration's statements, in order."""

    def record(self, migration: "Migration", database: str) -> str:
        """The ledger insert that marks the migration applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[str], list[str]]  # database -> statements, in order
    # Creates roles or grants: run where the store manages accounts (a server), recorded without
    # running on the embedded store, which has none.
    accounts: bool = False

    def checksum(self) -> str:
        return hashlib.sha256("\n;\n".join(self.statements("{db}")).encode()).hexdigest()[:16]


def _fmt(*groups: dict[str, str] | Sequence[str]) -> Callable[[str], list[str]]:
    def statements(db: str) -> list[str]:
        out: list[str] = []
        for group in groups:
            for sql in (group.values() if isinstance(group, dict) else group):
                out.append(sql.format(db=db).strip())
        return out
    return statements


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, counters, alerts, dead letters, communes", _fmt(schema.TABLES, schema.VIEWS)),
    Migration(2, "service practices and late data", _fmt(practice_schema.TABLES, practice_schema.ALTERS,
                                                          practice_schema.VIEWS)),
    Migration(3, "raw events by type (panel projection)", lambda db: panel_indexes.statements(db)),
    Migration(4, "dossiers: current state of every dossier", _fmt({k: history_schema.TABLES[k] for k in (
        history_schema.DOSSIERS,)}, {history_schema.DOSSIERS_NOW: history_schema.VIEWS[history_schema.DOSSIERS_NOW]})),
    Migration(5, "per-minute and per-day history, raw events without duplicates", _fmt(
        {k: v for k, v in history_schema.TABLES.items() if k != history_schema.DOSSIERS},
        history_schema.MATERIALIZED,
        {k: v for k, v in history_schema.VIEWS.items() if k != history_schema.DOSSIERS_NOW})),
)


def reader_role(database: str) -> str:
    """The read-only role of the dashboards and data teams: SELECT on the pipeline's database, readonly = 1."""
    return f"{database}_reader"


MIGRATIONS += (
    Migration(6, "read-only role for the dashboards and data teams", lambda db: [
        f"CREATE ROLE IF NOT EXISTS {reader_role(db)} SETTINGS readonly = 1",
        f"GRANT SELECT ON {db}.* TO {reader_role(db)}",
    ], accounts=True),
)
LATEST = MIGRATIONS[-1].version


def reader_account(database: str, user: str, password: str) -> list[str]:
    """A login (Grafana's, a data team's) that holds only the read-only role."""
    if not user.replace("_", "").isalnum():
        raise ValueError(f"the account name {user!r} is not a plain identifier")
    role = reader_role(database)
    return [f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY '{_quote(password)}' "
            f"DEFAULT ROLE {role} SETTINGS readonly = 1",
            f"GRANT {role} TO {user}", f"SET DEFAULT ROLE {role} TO {user}"]


def manages_accounts(client: Client) -> bool:
    """Whether the store keeps accounts that SQL can create (a server does; embedded chDB does not)."""
    rows = client.query("SELECT count() FROM system.user_directories "  # type: ignore[attr-defined]
                        "WHERE type IN ('local_directory', 'replicated')").result_rows
    return bool(rows[0][0])


def ledger_insert(migration: Migration, database: str, *, settings: str = "") -> str:
    """Deduplicated by its token, so a retried or repeated insert leaves one row per version."""
    extra = f", {settings}" if settings else ""
    return (f"INSERT INTO {database}.{LEDGER} (version, name, checksum, applied_at) "
            f"SETTINGS insert_deduplication_token = 'migration-{migration.version}'{extra} VALUES "
            f"({migration.version}, '{_quote(migration.name)}', '{migration.checksum()}', now64(3))")


class SingleServer:
    """The statements as written: the embedded chDB store, or one ClickHouse server."""

    def create_database(self, database: str) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {database}"

    def create_ledger(self, database: str) -> list[str]:
        return [LEDGER_DDL.format(db=database)]

    def statements(self, migration: Migration, database: str) -> list[str]:
        return migration.statements(database)

    def record(self, migration: Migration, database: str) -> str:
        return ledger_insert(migration, database)


SINGLE_SERVER = SingleServer()


@dataclass(frozen=True)
class Status:
    version: int
    name: str
    applied_at: datetime | None  # None: pending
    checksum_ok: bool = True  # False: the applied statements differ from this code's


def applied(client: Client, database: str) -> dict[int, tuple[str, datetime]]:
    """version -> (checksum, applied_at) of what the store records; empty if it has no ledger yet."""
    exists = client.query(  # type: ignore[attr-defined]
        f"SELECT count() FROM system.tables WHERE database = '{_quote(database)}' AND name = '{LEDGER}'"
    ).result_rows[0][0]
    if not exists:
        return {}
    rows = client.query(f"SELECT version, argMax(checksum, applied_at), max(applied_at) "  # type: ignore[attr-defined]
                        f"FROM {database}.{LEDGER} GROUP BY version").result_rows
    return {int(v): (c, at) for v, c, at in rows}


def status(client: Client, database: str) -> list[Status]:
    done = applied(client, database)
    out = [Status(m.version, m.name, done[m.version][1] if m.version in done else None,
                  m.version not in done or done[m.version][0] == m.checksum()) for m in MIGRATIONS]
    out += [Status(v, "(unknown to this onestop)", at) for v, (_, at) in sorted(done.items()) if v > LATEST]
    return out


def ledger_cluster(client: Client, database: str) -> str | None:
    """The cluster whose Distributed table is the ledger (``sinks.cluster``), or None on a single store."""
    rows = client.query(  # type: ignore[attr-defined]
        f"SELECT engine, engine_full FROM system.tables WHERE database = '{_quote(database)}' AND name = '{LEDGER}'"
    ).result_rows
    if not rows or rows[0][0] != "Distributed":
        return None
    return str(rows[0][1]).split("(", 1)[1].split(",", 1)[0].strip().strip("'`")


def check_not_newer(done: dict[int, tuple[str, datetime]], database: str) -> None:
    newer = sorted(v for v in done if v > LATEST)
    if newer:
        raise SchemaTooNew(
            f"the store's schema ({database}) is at migration {newer[-1]}, newer than this onestop-ioc knows "
            f"(up to {LATEST}); upgrade onestop-ioc, or point ONESTOP_CLICKHOUSE_DSN at another store")


def pending(done: dict[int, tuple[str, datetime]]) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version not in done]


def migrate(client: Client, database: str, *, progress: Callable[[Migration], None] | None = None,
            layout: Layout = SINGLE_SERVER) -> list[Migration]:
    """Apply the pending migrations in order; return those applied (none when the store is up to date).

    ``progress`` is called with each migration before its statements run.
    """
    client.command(layout.create_database(database))
    done = applied(client, database)
    check_not_newer(done, database)
    cluster = ledger_cluster(client, database)
    if cluster is not None and isinstance(layout, SingleServer) and pending(done):
        raise ClusterStore(
            f"the store's schema ({database}) lives on the ClickHouse cluster {cluster} and migrations "
            f"{', '.join(str(m.version) for m in pending(done))} are pending: apply them with "
            f"`onestop db migrate --cluster {cluster} --apply` before starting this onestop-ioc")
    for statement in layout.create_ledger(database):
        client.command(statement)
    ran = []
    accounts: bool | None = None
    for migration in pending(done):
        if progress:
            progress(migration)
        if migration.accounts and (accounts := manages_accounts(client) if accounts is None else accounts) is False:
            log.info("migration %d (%s) has nothing to do on a store without accounts", migration.version,
                     migration.name)
        else:
            for statement in layout.statements(migration, database):
                client.command(statement)
        client.command(layout.record(migration, database))
        log.info("applied migration %d: %s", migration.version, migration.name)
        ran.append(migration)
    return ran


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
