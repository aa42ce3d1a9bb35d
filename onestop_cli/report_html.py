"""``onestop report html``: the IOC panels as a self-contained HTML report and a PNG of the overview.

``register(report)`` adds the command to the ``report`` command group, so other
reports (Form 06) can live in their own modules under the same group.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from onestop.settings import Settings
from onestop_cli.options import settings_options

console = Console()


def write(settings: Settings, out: Path) -> tuple[Path, Path | None]:
    """Write the report from the store ``settings`` name; returns the overview page and its PNG (if Chromium is here)."""
    from dashboards.data import store_query
    from dashboards.view import Pages, screenshot, write_report
    from sinks.clickhouse import connect

    client = connect(settings)
    try:
        index, pages = write_report(Pages(store_query(client), settings.clickhouse_database), out)
    finally:
        client.close()
    png = screenshot(index, out / "tong-quan.png")
    return index, png


@settings_options(Settings, "clickhouse_dsn", "clickhouse_database", "home")
def html(
    out: Path = typer.Option(Path("ioc-report"), "--out", help="Directory for index.html, one page per commune and tong-quan.png."),
    *, settings: Settings,
) -> None:
    """Write the IOC panels (province overview and every commune) as HTML pages with no outside resource."""
    from sinks.clickhouse import StoreError

    try:
        index, png = write(settings, out)
    except StoreError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"IOC report: {index.resolve()}")
    console.print(f"overview PNG: {png.resolve()}" if png else "overview PNG: skipped (no Chromium on this machine)")


def register(report: typer.Typer) -> None:
    report.command(name="html", help="Write the IOC panels as a self-contained HTML report (and a PNG of the overview).")(html)
