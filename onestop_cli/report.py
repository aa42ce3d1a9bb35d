"""``onestop report form06``: the official Biểu 06 of a province over a period, from the raw events in ClickHouse."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from onestop.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Official reports computed from the stored events.")
err = Console(stderr=True, soft_wrap=True)


@app.command("form06")
def form06(
    out: Path = typer.Option(..., "--out", "-o", help="FILE.xlsx or FILE.csv; written only if the report balances."),
    period: str = typer.Option(..., "--period", help="2026-10 (month), 2026-Q4 (quarter), 2026-H2 (half-year) or 2026 (year)."),
    province: Optional[str] = typer.Option(None, "--province", "-p",
                                           help="Two-digit province code (default ONESTOP_PROVINCE_CODE, 42 = Hà Tĩnh)."),
) -> None:
    """Write Biểu 06 (Form 06/VPCP/KSTT): rows by handling commune and field, the official column groups."""
    from onestop.catalogue import CatalogueError, load_catalogue
    from onestop.communes import UnknownProvince, communes_of
    from onestop.periods import parse_period
    from onestop.workcal import CalendarError, load_calendar
    from sinks.clickhouse import StoreError
    from sinks.form06_files import write_report
    from sinks.form06_sheet import UnbalancedReport
    from sinks.form06_source import province_report
    from sinks.query_service import reader_for

    settings = get_settings()
    code = province or settings.province_code
    try:
        chosen = parse_period(period)
        names = {c.code: c.name for c in communes_of(code)}
        calendar, catalogue = load_calendar(settings.calendar_override), load_catalogue(settings.catalogue_file)
        with reader_for(settings) as reader:
            report = province_report(reader, settings.clickhouse_database, code, chosen,
                                     calendar=calendar, catalogue=catalogue)
        rows = write_report(report, out, province=code, period=chosen, names=names)
    except UnbalancedReport as exc:
        err.print(f"[red]refused:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except (StoreError, ValueError, UnknownProvince, CatalogueError, CalendarError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    total = report.total
    err.print(f"wrote Biểu 06 for province {code}, {chosen.label}: {sum(r.kind == 'commune' for r in rows)} units, "
              f"{total.received:,} dossiers received = {total.resolved:,} resolved + {total.in_progress:,} in progress "
              f"+ {total.stopped + total.refused + total.withdrawn:,} closed without a result → {out}")
