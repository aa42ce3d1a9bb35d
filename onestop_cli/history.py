"""History for data teams: ``onestop query`` and ``onestop export``, read-only, while the pipeline runs.

Both go to the store's owner (the running sink) when there is one, open the
embedded store directly when nothing owns it, and talk to the server with a
server DSN (``sinks.query_service``). Results stream: CSV, JSON and Parquet
are written batch by batch.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from onestop.settings import get_settings

QUERY_FORMATS = ("table", "csv", "json", "parquet", "tsv", "jsonl")
err = Console(stderr=True, soft_wrap=True)


def query(
    sql: str = typer.Argument(..., help="One read-only ClickHouse statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, "
                                        "EXISTS); tables live in ONESTOP_CLICKHOUSE_DATABASE (default ioc)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json (an array), parquet (needs --out); "
                                                             "also tsv and jsonl (one object per line)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to this file instead of stdout."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p",
                                              help="NAME=VALUE for a {NAME:Type} placeholder in the query; repeatable."),
    show_origin: bool = typer.Option(False, "--show-origin", help="Also say on stderr where the query was answered."),
) -> None:
    """Run a read-only SQL query against the pipeline's ClickHouse and print the result."""
    from sinks.clickhouse import StoreError
    from sinks.formats import atomic_output, write_batches
    from sinks.query_service import reader_for
    from sinks.readonly import ReadRefused

    if fmt not in QUERY_FORMATS:
        _fail(f"unknown format {fmt!r}; choose from {', '.join(QUERY_FORMATS)}", 2)
    if fmt == "parquet" and out is None:
        _fail("--format parquet writes a binary file: give --out FILE.parquet", 2)
    try:
        parameters = _parameters(param or [])
        with reader_for(get_settings()) as reader:
            if show_origin:
                err.print(f"answered by {reader.where}")
            with reader.stream(sql, parameters) as batches:
                if fmt == "table":
                    _print_table(batches)
                    return
                with (atomic_output(out) if out else nullcontext(sys.stdout.buffer)) as sink:
                    rows = write_batches(batches, fmt, sink)
                    sink.flush()
        if out:
            err.print(f"wrote {rows:,} rows to {out}")
    except ReadRefused as exc:
        _fail(str(exc), 2)
    except (StoreError, ValueError) as exc:
        _fail(str(exc), 1)


def export(
    table: str = typer.Option(..., "--table", "-t", help="Table (or view) of ONESTOP_CLICKHOUSE_DATABASE, e.g. dossier_events."),
    out: Path = typer.Option(..., "--out", "-o", help="The file to write; it appears only once complete."),
    since: Optional[str] = typer.Option(None, "--since", help="First instant, inclusive: 2026-10-01 or 2026-10-01T08:00 "
                                                             "(Asia/Ho_Chi_Minh unless an offset is given)."),
    until: Optional[str] = typer.Option(None, "--until", help="End instant, exclusive (same forms as --since)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="parquet or csv (default: from the --out suffix)."),
    time_column: Optional[str] = typer.Option(None, "--time-column",
                                              help="Column that --since/--until select on (default: the table's time column)."),
) -> None:
    """Stream a table's rows between two instants into a Parquet or CSV file, in constant memory."""
    from sinks.clickhouse import StoreError
    from sinks.export import export as run_export, format_for, parse_instant, plan_export
    from sinks.query_service import reader_for

    settings = get_settings()
    try:
        chosen = format_for(out, fmt)
        start, end = (parse_instant(since) if since else None), (parse_instant(until) if until else None)
        if start and end and end <= start:
            raise ValueError(f"--until {until} is not after --since {since}")
        with reader_for(settings) as reader:
            plan = plan_export(reader, settings.clickhouse_database, table, since=start, until=end,
                               time_column=time_column)
            result = run_export(reader, plan, out, chosen)
    except (StoreError, ValueError) as exc:
        _fail(str(exc), 1)
    span = f" on {plan.time_column} in [{since or '…'}, {until or '…'})" if since or until else ""
    err.print(f"exported {result.rows:,} rows of {plan.table}{span} to {out} ({chosen}) in {result.seconds:.1f}s")


def _parameters(items: list[str]) -> dict[str, str]:
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        parameters[name.strip()] = value
    return parameters


def _print_table(batches) -> None:  # type: ignore[no-untyped-def]
    table, rows = Table(*batches.schema.names), 0
    for batch in batches:
        for record in batch.to_pylist():
            table.add_row(*("" if v is None else str(v) for v in record.values()))
            rows += 1
    Console().print(table)
    err.print(f"{rows:,} rows")


def _fail(message: str, code: int) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(help="Run a read-only SQL query against ClickHouse (answered by the running sink, or chDB directly).")(query)
    app.command(help="Stream a table's rows over a time range into a Parquet or CSV file.")(export)
