"""``onestop rebuild`` and ``onestop reconcile``: the derived tables, recomputed from the events.

``rebuild`` recreates every table derived from ``dossier.events`` (``ops.rebuild``);
``reconcile`` recomputes the counts from the raw events in the store and prints
where the stream's tables differ (``ops.reconcile``).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from onestop.settings import Settings
from onestop_cli.options import settings_options

console = Console()
err = Console(stderr=True, soft_wrap=True)

FOLD_SETTINGS = ("allowed_lateness_s", "escalate_after_working_days", "due_soon_hours", "seq_gap_timeout_s",
                 "result_ready_while_waiting", "sla_boundary", "event_clock_quorum", "occurred_at_max_ahead_s",
                 "occurred_at_floor", "import_occurred_at_floor", "calendar_override", "catalogue_file",
                 "service_calendar_file", "worker_gc_threshold")
STORE_SETTINGS = ("clickhouse_dsn", "clickhouse_database", "home", "log_level")
REBUILD_HELP = (
    "Recreate every table derived from dossier.events: the raw events (dossier_events, event_deliveries, and "
    "events_per_minute / events_per_day through their materialized views), dossiers, the counter tables "
    "(backlog, throughput, on-time, same-day, service activity, satisfaction) with counter_epochs, and alerts. "
    "They are truncated first. dead_letters and communes do not come from dossier.events and are left as they are. "
    "Reads every partition from its first offset to the end offset at the start, bypassing Faust, and judges "
    "overdue against event time. With the embedded store, stop the sink first.")


class CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:,.0f}"
        return Text(f"{task.completed:,.0f}/{total} events", style="progress.download")


class RateColumn(ProgressColumn):
    """Events per second since the start (the groups report in bursts: a recent rate would jump)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed or not task.completed:
            return Text("–", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:,.0f} events/s", style="progress.data.speed")


@settings_options(Settings, "kafka_bootstrap", "topic_events", *FOLD_SETTINGS, *STORE_SETTINGS)
def rebuild(
    settings: Settings,
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Partition groups read and folded in parallel, one process each "
                                               "(default: one per CPU, at most one per partition)."),
    chunk: int = typer.Option(100_000, "--chunk", min=1000, help="Events per insert into dossier_events."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before truncating the derived tables."),
) -> None:
    """Recreate every derived table from dossier.events (dead_letters and communes are left as they are)."""
    from ops.rebuild import DERIVED_TABLES, RebuildError, run_rebuild
    from sinks.clickhouse import StoreError

    if not yes:
        if not sys.stdin.isatty():
            _fail("the rebuild truncates the derived tables first: confirm with --yes", 2)
        typer.confirm(f"Truncate and rebuild {len(DERIVED_TABLES)} tables of {settings.clickhouse_database} "
                      f"from {settings.topic_events}?", abort=True)
    columns = (TextColumn("[bold]rebuild"), BarColumn(), CountColumn(),
               RateColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=err, transient=False)
    task = bar.add_task("rebuild", total=None)

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started:  # started on the first report, after the worker processes are forked
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        result = run_rebuild(settings, workers=workers, chunk=chunk, on_progress=progress)
    except (RebuildError, StoreError) as exc:
        bar.stop()
        _fail(str(exc), 1)
    finally:
        bar.stop()
    table = Table("table", "rows", title=f"rebuilt from {settings.topic_events}")
    for name in DERIVED_TABLES:
        if name in result.rows:
            table.add_row(name, f"{result.rows[name]:,}")
    console.print(table)
    notes = [f"{result.records:,} records in {result.seconds:.1f}s ({result.rate:,.0f} events/s, "
             f"{result.workers} worker{'s' if result.workers > 1 else ''})"]
    if result.refused:
        notes.append(f"{result.refused:,} records break the contract or admission (as in dossier.dlq)")
    if result.failed or result.unstorable:
        notes.append(f"[yellow]{result.failed:,} records could not be folded, {result.unstorable:,} rows did "
                     "not fit their columns (see the log)[/yellow]")
    err.print("; ".join(notes))


RECONCILE_HELP = (
    "Recompute backlog, throughput, on-time and the service-practice counts (same_day, service_activity, "
    "satisfaction) from the raw events in the store (dossier_events, folded by the worker's own code) and "
    "compare them with the stream's views for the period (the backlog as of now). Prints every difference; "
    "exits 1 if there is any, 0 if there is none, 2 on a bad argument, 3 when the store cannot be read.")


@settings_options(Settings, "clock", *FOLD_SETTINGS, *STORE_SETTINGS)
def reconcile(
    settings: Settings,
    period: Optional[str] = typer.Option(None, "--period", "-p",
                                         help="2026-10-05 (a day), 2026-10 (a month), 2026-Q4, 2026-H2 or 2026, in "
                                              "Asia/Ho_Chi_Minh (default: all time)."),
    since: Optional[str] = typer.Option(None, "--since", help="Instead of --period: first instant, inclusive "
                                                             "(2026-10-01 or 2026-10-01T08:00; Asia/Ho_Chi_Minh "
                                                             "unless an offset is given)."),
    until: Optional[str] = typer.Option(None, "--until", help="End instant, exclusive (same forms as --since)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, tsv or jsonl (one difference per line)."),
) -> None:
    """Recompute the counts from the stored raw events and print where the stream's tables differ."""
    from ops.reconcile import Period, parse_period, reconcile as run
    from sinks.clickhouse import StoreError
    from sinks.export import parse_instant

    if fmt not in ("table", "tsv", "jsonl"):
        _fail(f"unknown format {fmt!r}; choose from table, tsv, jsonl", 2)
    try:
        if period is not None and (since or until):
            raise ValueError("give either --period or --since/--until, not both")
        if period is not None:
            chosen = parse_period(period)
        else:
            start, end = (parse_instant(since) if since else None), (parse_instant(until) if until else None)
            if start and end and end <= start:
                raise ValueError(f"--until {until} is not after --since {since}")
            chosen = Period(start, end, f"[{since or '…'}, {until or '…'})") if start or end else Period()
    except ValueError as exc:
        _fail(str(exc), 2)
    try:
        with err.status("folding the raw events…"):
            result = run(settings, chosen)
    except StoreError as exc:
        _fail(str(exc), 3)
    _print_differences(result, fmt)


def _print_differences(result, fmt: str) -> None:  # type: ignore[no-untyped-def]
    from onestop_cli.output import print_rows

    compared = ", ".join(f"{name} {n:,}" for name, n in result.compared.items())
    if result.ok:
        err.print(f"[green]no differences[/green]: the stream's views match the counts recomputed from "
                  f"{result.events:,} raw events ({result.period.name}; keys compared: {compared})")
        return
    rows = [(d.view, d.key_text, d.stream, d.recomputed) for d in result.differences]
    if fmt == "jsonl":
        import json

        for d in result.differences:
            print(json.dumps({"table": d.view, "key": {k: _plain(v) for k, v in d.key}, "stream": d.stream,
                              "recomputed": d.recomputed}, ensure_ascii=False))
    else:
        print_rows(["table", "key", "stream", "recomputed"], rows, fmt,
                   title=f"differences between the stream and the raw events ({result.period.name})")
    views = sorted({d.view for d in result.differences})
    err.print(f"[red]{len(result.differences):,} differences[/red] in {', '.join(views)} "
              f"({result.events:,} raw events; {result.period.name})")
    raise typer.Exit(1)


def _plain(value):  # type: ignore[no-untyped-def]
    from datetime import date, datetime, timezone

    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _fail(message: str, code: int) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(help=REBUILD_HELP)(rebuild)
    app.command(help=RECONCILE_HELP)(reconcile)
