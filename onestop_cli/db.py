"""``onestop db migrate`` and ``onestop db status``: the store's numbered schema migrations (``sinks.migrations``).

With the embedded chDB store, only one process can open it. When the sink owns
it, the sink has already applied the migrations it knows when it started:
``migrate`` says so (and what is still pending, if the sink is older), and
``status`` reads the ledger through the sink, read-only. ``--cluster NAME``
turns the same migrations into the schema of a ClickHouse cluster
(``sinks.cluster``): printed, written to a file, or applied to a server.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn, Optional
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from onestop.settings import Settings, get_settings

ENVIRONMENT = (
    "Environment: ONESTOP_CLICKHOUSE_DSN chooses the store: empty (the default) means the embedded chDB store "
    "under ONESTOP_HOME/chdb, http://user:pass@host:8123 a ClickHouse server. ONESTOP_CLICKHOUSE_DATABASE is "
    "the database (default ioc). ONESTOP_HOME is the state directory (default ~/.local/state/onestop-ioc).\n\n"
    "Exit codes: 0 done, 1 the store failed or is busy, 2 wrong usage, 3 the store's schema is newer than "
    "this onestop-ioc.")
SCHEMA_TOO_NEW = 3
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich", epilog=ENVIRONMENT)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@app.command(epilog=ENVIRONMENT)
def migrate(
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Emit the schema for this ClickHouse cluster "
                                          "(Replicated local tables, Distributed tables, everything ON CLUSTER) "
                                          "instead of migrating the store."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="With --cluster: write the statements to "
                                            "this file instead of stdout."),
    apply: bool = typer.Option(False, "--apply", help="With --cluster: run the statements on the server of "
                               "ONESTOP_CLICKHOUSE_DSN (one node of the cluster) and record them in its ledger."),
    reader_user: Optional[str] = typer.Option(None, "--reader-user", envvar="CLICKHOUSE_READER_USER",
                                              show_envvar=True, help=(
        "On a server: also create this login holding only the read-only role <database>_reader (Grafana's "
        "account); its password comes from CLICKHOUSE_READER_PASSWORD.")),
) -> None:
    """Apply the pending schema migrations to the store, in order; idempotent ("up to date" when none is pending).

    The sink does the same when it starts: this is for stores that no sink has opened yet, upgrades, and clusters.
    """
    from sinks.clickhouse import StoreError
    from sinks.migrations import ClusterStore, SchemaTooNew

    settings = get_settings()
    if cluster is None and (out_file is not None or apply):
        _fail("--out and --apply go with --cluster NAME", 2)
    if apply and out_file is not None:
        _fail("choose one: --out FILE writes the statements, --apply runs them", 2)
    try:
        if cluster is not None and not apply:
            _emit(settings, cluster, out_file)
        elif cluster is not None:
            _apply_on_cluster(settings, cluster)
        else:
            _migrate_store(settings)
        if reader_user:
            _reader_account(settings, reader_user)
    except SchemaTooNew as exc:
        _fail(str(exc), SCHEMA_TOO_NEW)
    except (StoreError, ClusterStore, ValueError) as exc:
        _fail(str(exc), 1)


@app.command(epilog=ENVIRONMENT, help=(
    'Every migration this onestop-ioc knows, with when the store applied it, or "pending"; read-only.\n\n'
    "Warns when an applied migration's checksum differs from this code's (it was edited after it was applied), "
    "and when the store records migrations newer than this onestop-ioc."))
def status() -> None:
    from sinks import migrations
    from sinks.clickhouse import StoreError

    settings = get_settings()
    try:
        rows = _read_status(settings)
    except StoreError as exc:
        _fail(str(exc), 1)
    table = Table("version", "name", "applied at (UTC+7)", "checksum",
                  title=f"Schema migrations of {settings.clickhouse_database} ({_where(settings)})")
    for row in rows:
        known = row.version <= migrations.LATEST
        checksum = "" if row.applied_at is None or not known else ("ok" if row.checksum_ok else "[red]differs[/red]")
        table.add_row(str(row.version), row.name, _local(row.applied_at) if row.applied_at else "pending", checksum)
    out.print(table)
    pending = sum(r.applied_at is None for r in rows)
    newer = [r.version for r in rows if r.version > migrations.LATEST]
    out.print(f"{len(rows) - pending - len(newer)} applied, {pending} pending, {len(newer)} newer "
              f"(this onestop-ioc knows 1 to {migrations.LATEST})")
    for row in rows:
        if not row.checksum_ok:
            err.print(f"[yellow]warning:[/yellow] migration {row.version} ({row.name}) was applied with other "
                      "statements than this onestop-ioc's: it was edited after it was applied. Never edit an "
                      "applied migration; add a new one.", highlight=False)
    if newer:
        err.print(f"[yellow]warning:[/yellow] the store records migrations {', '.join(map(str, newer))}, newer "
                  "than this onestop-ioc knows: upgrade onestop-ioc before running it on this store.", highlight=False)


def _migrate_store(settings: Settings) -> None:
    from sinks.clickhouse import connect
    from sinks.query_service import owner_or_free

    if _embedded(settings):
        owner = owner_or_free(settings)
        if owner is not None:
            return _owned(settings, owner)
    client = connect(settings, lock_wait_s=5.0)
    try:
        _run(settings, client, layout=None)
    finally:
        client.close()


def _reader_account(settings: Settings, user: str) -> None:
    from sinks import migrations
    from sinks.clickhouse import connect

    password = os.environ.get("CLICKHOUSE_READER_PASSWORD", "")
    if _embedded(settings):
        _fail("--reader-user: the embedded store has no accounts; the read-only path of the embedded store is "
              "the sink's query service", 2)
    if not password:
        _fail("--reader-user needs the account's password in CLICKHOUSE_READER_PASSWORD", 2)
    client = connect(settings)
    try:
        for statement in migrations.reader_account(settings.clickhouse_database, user, password):
            client.command(statement)
    finally:
        client.close()
    out.print(f"✓ account {user} holds the read-only role {migrations.reader_role(settings.clickhouse_database)}")


def _owned(settings: Settings, owner) -> None:  # type: ignore[no-untyped-def]
    """The sink owns the store: it migrated it when it started; say what it left pending, if anything."""
    from sinks import migrations
    from sinks.query_service import ReaderRows

    done = migrations.applied(ReaderRows(owner), settings.clickhouse_database)
    migrations.check_not_newer(done, settings.clickhouse_database)
    todo = migrations.pending(done)
    if not todo:
        out.print(f"up to date at migration {migrations.LATEST}: the running sink (pid {owner.pid}) owns the store "
                  "and applied the migrations when it started")
        return
    _fail(f"the running sink (pid {owner.pid}) owns the store {_where(settings)}, and migrations "
          f"{', '.join(str(m.version) for m in todo)} are pending: it runs an older onestop-ioc. Restart the sink "
          "with this version (it migrates when it starts), or stop it and run `onestop db migrate`.", 1)


def _emit(settings: Settings, cluster: str, out_file: Path | None) -> None:
    from sinks import cluster as cluster_schema

    script = cluster_schema.script(settings.clickhouse_database, cluster)
    if out_file is None:
        sys.stdout.write(script)
        return
    tmp = out_file.with_name(f".{out_file.name}.{os.getpid()}")
    tmp.write_text(script, encoding="utf-8")
    tmp.replace(out_file)
    count = len(cluster_schema.statements(settings.clickhouse_database, cluster))
    err.print(f"wrote {count} statements for the cluster {cluster} to {out_file}")


def _apply_on_cluster(settings: Settings, cluster: str) -> None:
    from sinks.clickhouse import connect
    from sinks.cluster import ClusterLayout

    if _embedded(settings):
        _fail("--apply needs a ClickHouse server: a cluster is made of servers, and the embedded chDB store is "
              "not one. Set ONESTOP_CLICKHOUSE_DSN=http://user:pass@host:8123 to one node of the cluster, or "
              "leave out --apply to print the statements.", 2)
    layout = ClusterLayout(cluster)
    client = connect(settings)
    try:
        _run(settings, client, layout=layout)
    finally:
        client.close()


def _run(settings: Settings, client, layout) -> None:  # type: ignore[no-untyped-def]
    from sinks import migrations
    from sinks.clickhouse import ensure_schema

    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # the progress display says it, and what follows
        logging.getLogger(migrations.__name__).setLevel(logging.WARNING)
    db = settings.clickhouse_database
    todo = migrations.pending(migrations.applied(client, db))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("migrating", total=len(todo))

        def started(migration: migrations.Migration) -> None:
            progress.update(task, description=f"migration {migration.version}: {migration.name}",
                            completed=todo.index(migration) if migration in todo else 0)

        ran = ensure_schema(client, db, progress=started, layout=layout or migrations.SINGLE_SERVER)
        progress.update(task, completed=len(todo))
    for migration in ran:
        out.print(f"applied migration {migration.version}: {migration.name}")
    where = f"{db} ({_where(settings)}{f', cluster {layout.cluster}' if layout else ''})"
    if ran:
        out.print(f"{where} is at migration {migrations.LATEST}")
    else:
        out.print(f"up to date: {where} is at migration {migrations.LATEST}")


def _read_status(settings: Settings) -> list:
    from sinks import migrations
    from sinks.clickhouse import connect
    from sinks.query_service import ReaderRows, reader_for
    from sinks.readonly import chdb_path

    db = settings.clickhouse_database
    if not _embedded(settings):
        client = connect(settings)
        try:
            return migrations.status(client, db)
        finally:
            client.close()
    if not os.path.isdir(chdb_path(settings.effective_clickhouse_dsn)):
        return [migrations.Status(m.version, m.name, None) for m in migrations.MIGRATIONS]  # no store yet
    with reader_for(settings) as reader:  # the sink, when it owns the store; else the store, read-only
        return migrations.status(ReaderRows(reader), db)


def _embedded(settings: Settings) -> bool:
    return settings.effective_clickhouse_dsn.startswith("chdb://")


def _where(settings: Settings) -> str:
    dsn = settings.effective_clickhouse_dsn
    if dsn.startswith("chdb://"):
        return f"chDB store {dsn.removeprefix('chdb://')}"
    return "ClickHouse server " + (dsn.split("@", 1)[1] if "@" in dsn else dsn.split("://", 1)[-1])


def _local(at: datetime) -> str:
    utc = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at
    return utc.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)
