"""``onestop ioc``: the live wall-screen view of the IOC panels, on loopback, from the store this process owns.

chDB allows one process per store, so the view either opens the store itself
(nothing else may have it open) or, with ``--sink``, is served by the process
that writes the store: the ClickHouse writer runs in this process too, and the
view reads through the writer's own connection while it writes.
"""

from __future__ import annotations

import signal
import threading
import time

import typer
from rich.console import Console

from onestop.settings import Settings
from onestop_cli.options import settings_options
from onestop_cli.pipeline import SINK_SETTINGS

console = Console()


@settings_options(Settings, *SINK_SETTINGS)
def ioc(
    host: str = typer.Option("127.0.0.1", envvar="ONESTOP_IOC_HOST", show_envvar=True, help="Loopback address to serve on."),
    port: int = typer.Option(8090, envvar="ONESTOP_IOC_PORT", show_envvar=True, help="Port to serve on (0: any free port)."),
    refresh: int = typer.Option(10, min=2, help="Seconds between the page's refreshes."),
    span_days: int = typer.Option(7, min=1, help="Days of history in the time series (the range ends at the store's clock)."),
    sink: bool = typer.Option(False, "--sink", help="Also run the ClickHouse writer in this process (it owns the store and serves the view)."),
    prometheus_url: str = typer.Option("", envvar="ONESTOP_IOC_PROMETHEUS_URL", show_envvar=True, help="A Prometheus on loopback: adds the Pipeline health page (/he-thong)."),
    *, settings: Settings,
) -> None:
    """Serve the province overview (/), the commune drill-down (/xa) and, with a Prometheus, the pipeline's
    health (/he-thong) as a live wall-screen page.

    Without --sink this process opens the store itself: with the embedded store (chDB) the sink must not be
    running; a ClickHouse server (ONESTOP_CLICKHOUSE_DSN) may be shared by any number of readers.
    """
    from datetime import timedelta

    from dashboards.data import store_query
    from dashboards.live import serve
    from dashboards.view import Pages
    from sinks.clickhouse import StoreError, connect

    writer = None
    try:
        if sink:
            from sinks.writer import ClickHouseWriter

            writer = ClickHouseWriter(settings)
            client = writer.client
        else:
            client = connect(settings)
    except StoreError as exc:
        console.print(f"[red]error:[/red] {exc}\nchDB allows one process per store: stop the sink, run "
                      "`onestop ioc --sink` instead of it, or use a server DSN.")
        raise typer.Exit(1) from None
    pages = Pages(store_query(client), settings.clickhouse_database, timedelta(days=span_days), refresh,
                  prometheus_url=prometheus_url.rstrip("/") or None)
    try:
        server = serve(pages, host, port)
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"IOC view on http://{host}:{server.server_port}/ (commune drill-down: /xa"
                  + (", pipeline health: /he-thong)" if prometheus_url else ")")
                  + ("; writing the store from Kafka" if writer else "") + "; Ctrl-C stops it")
    try:
        _run(writer)
    finally:
        server.shutdown()
        if writer is None:
            client.close()


def _run(writer) -> None:  # type: ignore[no-untyped-def]
    if writer is not None:
        writer.run()  # until SIGTERM / SIGINT; it closes the store when it stops
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
