"""``onestop import FILE``: a one-stop system's export (CSV or JSONL) into ``dossier.events``.

One event per status record; bad rows go to ``dossier.dlq`` with their row
number and reason. The work is done by :mod:`producers.importer`; this module
only parses options, draws the progress bar and prints the summary.
See docs/importer.md.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)
from rich.table import Table

from onestop.settings import Settings, get_settings

err = Console(stderr=True)
CLIENT_ID = "onestop-importer"


def import_file(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="CSV or JSONL export, one row per dossier status record, with the national "
                                     "portal's column names (MaHoSo, MaTTHC, TrangThaiHoSo, ...)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="csv or jsonl (default: from the file name)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the events as JSON lines; publish nothing."),
    allow_unknown_communes: bool = typer.Option(
        False, "--allow-unknown-communes", help="Accept 5-digit commune codes missing from the official list."),
) -> None:
    """Import a one-stop export: one event per status record, bad rows to the DLQ. Re-importing is safe."""
    from producers.importer import ImportFileError

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the publisher reports outages itself
    options = {"fmt": fmt, "check_communes": not allow_unknown_communes, "rules": _rules(get_settings())}
    try:
        if dry_run:
            summary, leftover = _dry_run(file, options), None
        else:
            summary, leftover = _publish(get_settings(), file, options)
    except ImportFileError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    print_summary(summary, published=not dry_run)
    if leftover:
        err.print(f"[yellow]Kafka has not acknowledged everything yet:[/] {leftover}\nThose events are safe on "
                  f"disk and the next `onestop import` sends them first (re-importing this file is harmless).",
                  highlight=False)
        raise typer.Exit(1)


class _Printer:
    """A stand-in publisher for --dry-run: events to stdout, dead letters to stderr."""

    def publish(self, event: Any) -> None:
        from onestop import events

        sys.stdout.write(events.encode(event).decode() + "\n")

    def dead_letter(self, record: Any) -> None:
        err.print(f"[red]rejected[/] {record.source}: {record.reason_code}: {record.message}", highlight=False)


def _rules(settings: Settings) -> Any:
    from onestop.admission import rules_from
    from onestop.catalogue import load_catalogue

    return rules_from(settings, load_catalogue(settings.catalogue_file))


def _dry_run(file: Path, options: dict[str, Any]):
    from producers.importer import import_file as run

    return run(file, _Printer(), **options)


def _publish(settings: Settings, file: Path, options: dict[str, Any]):
    """Import through the Kafka publisher; return the summary and what is still unacknowledged, if anything."""
    from producers.importer import import_file as run
    from producers.publisher import Publisher, PublisherTimeout

    leftover = None
    with Publisher(settings, client_id=CLIENT_ID) as pub, _progress(file) as advance:
        summary = run(file, pub, on_row=advance, **options)
        try:
            pub.flush(timeout=pub.ps.close_timeout_s)
        except PublisherTimeout as exc:
            leftover = str(exc)
            pub.close(timeout=0)  # waited long enough: leave the rest in the spool
    return summary, leftover


@contextmanager
def _progress(file: Path) -> Iterator[Any]:
    columns = (TextColumn("[bold]importing[/] {task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TextColumn("{task.fields[rows]:,} rows"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(file.name, total=file.stat().st_size, rows=0)
        rows = 0

        def advance(row: Any) -> None:
            nonlocal rows
            rows += 1
            progress.update(task, completed=row.offset, rows=rows)

        yield advance
        progress.update(task, completed=file.stat().st_size, rows=rows)


def print_summary(summary: Any, *, published: bool = True) -> None:
    table = Table(title=f"import of {summary.file}", show_header=False)
    table.add_row("rows read", f"{summary.rows:,}")
    table.add_row("events published" if published else "events (dry run)", f"{summary.events:,}")
    table.add_row("duplicate rows skipped", f"{summary.duplicates:,}")
    table.add_row("rows rejected → DLQ" if published else "rows rejected", f"{summary.rejected_total:,}")
    for code, count in summary.rejected.most_common():
        table.add_row(f"  {code}", f"{count:,}")
    err.print(table)
