"""``onestop ioc``: the live wall-screen view of the IOC panels, on loopback, from the store this process opens."""

from __future__ import annotations

import signal
import threading
import time

import typer
from rich.console import Console

from onestop.settings import Settings
from onestop_cli.options import settings_options

console = Console()
IOC_SETTINGS = ("clickhouse_dsn", "clickhouse_database", "home", "log_level")


@settings_options(Settings, *IOC_SETTINGS)
def ioc(
    host: str = typer.Option("127.0.0.1", envvar="ONESTOP_IOC_HOST", show_envvar=True, help="Loopback address to serve on."),
    port: int = typer.Option(8090, envvar="ONESTOP_IOC_PORT", show_envvar=True, help="Port to serve on."),
    refresh: int = typer.Option(10, min=2, help="Seconds between the page's refreshes."),
    span_days: int = typer.Option(7, min=1, help="Days of history in the time series (the range ends at the store's clock)."),
    *, settings: Settings,
) -> None:
    """Serve the province overview and the commune drill-down as a live wall-screen page.

    With the embedded store (chDB) this process must own the store: run it where the sink is not running,
    or against a ClickHouse server (ONESTOP_CLICKHOUSE_DSN), which any number of readers may share.
    """
    from datetime import timedelta

    from dashboards.data import store_query
    from dashboards.live import serve
    from dashboards.view import Pages
    from sinks.clickhouse import StoreError, connect

    try:
        client = connect(settings)
    except StoreError as exc:
        console.print(f"[red]error:[/red] {exc}\nchDB allows one process per store: stop the sink, or use a server DSN.")
        raise typer.Exit(1) from None
    pages = Pages(store_query(client), settings.clickhouse_database, timedelta(days=span_days), refresh)
    try:
        server = serve(pages, host, port)
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"IOC view on http://{host}:{server.server_port}/ (commune drill-down: /xa); Ctrl-C stops it")
    try:
        while not stop.is_set():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        client.close()
