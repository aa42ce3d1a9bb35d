"""``onestop dashboards export|publish``: the IOC dashboards as Grafana JSON, and into an existing Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from onestop.settings import Settings
from onestop_cli.options import settings_options

app = typer.Typer(no_args_is_help=True)
console = Console()
DEFAULT_DIR = Path("dashboards/grafana")


@app.command()
@settings_options(Settings, "clickhouse_database", "province_code")
def export(
    directory: Path = typer.Argument(DEFAULT_DIR, help="Where to write one JSON file per dashboard (Grafana's file provider reads it)."),
    check: bool = typer.Option(False, "--check", help="Fail if the files there differ from the panel source instead of writing them."),
    *, settings: Settings,
) -> None:
    """Write the dashboards' JSON, built with Grafana's SDK from the one panel source."""
    import tempfile

    from dashboards.grafana import export as write

    if not check:
        for path in write(directory, database=settings.clickhouse_database, province_code=settings.province_code):
            console.print(f"wrote {path}")
        return
    with tempfile.TemporaryDirectory() as fresh:
        stale = [p.name for p in write(Path(fresh), database=settings.clickhouse_database,
                                       province_code=settings.province_code)
                 if not (directory / p.name).exists() or (directory / p.name).read_bytes() != p.read_bytes()]
    if stale:
        console.print(f"[red]out of date in {directory}: {', '.join(stale)}; run `onestop dashboards export {directory}`[/red]")
        raise typer.Exit(1)
    console.print(f"{directory} is up to date")


@app.command()
@settings_options(Settings, "clickhouse_database", "province_code")
def publish(
    grafana_url: str = typer.Option(..., "--grafana-url", envvar="GRAFANA_URL", show_envvar=True, help="Grafana's base URL, e.g. http://127.0.0.1:3000."),
    grafana_user: Optional[str] = typer.Option(None, envvar="GRAFANA_ADMIN_USER", show_envvar=True, help="Grafana login (or use a token)."),
    clickhouse_host: str = typer.Option("clickhouse", help="ClickHouse host as Grafana reaches it."),
    clickhouse_port: int = typer.Option(8123, help="ClickHouse HTTP port as Grafana reaches it."),
    clickhouse_user: str = typer.Option("grafana_reader", envvar="CLICKHOUSE_READER_USER", show_envvar=True, help="Grafana's read-only ClickHouse account."),
    prometheus_url: str = typer.Option("http://prometheus:9090", help="Prometheus as Grafana reaches it."),
    *, settings: Settings,
) -> None:
    """Push the folder, the data sources and the dashboards to an existing Grafana (idempotent).

    Secrets come from the environment only: GRAFANA_TOKEN (or GRAFANA_ADMIN_PASSWORD with --grafana-user)
    and CLICKHOUSE_READER_PASSWORD.
    """
    import os

    from dashboards.publish import PublishError, Target, connect, publish as push

    api = connect(grafana_url, token=os.environ.get("GRAFANA_TOKEN"), user=grafana_user,
                  password=os.environ.get("GRAFANA_ADMIN_PASSWORD"))
    target = Target(clickhouse_host=clickhouse_host, clickhouse_port=clickhouse_port, clickhouse_user=clickhouse_user,
                    clickhouse_password=os.environ.get("CLICKHOUSE_READER_PASSWORD"),
                    database=settings.clickhouse_database, prometheus_url=prometheus_url,
                    province_code=settings.province_code)
    try:
        saved = push(api, target)
    except PublishError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"[green]✓[/green] published folder, 2 data sources and {len(saved)} dashboards to {grafana_url}: "
                  + ", ".join(saved))
