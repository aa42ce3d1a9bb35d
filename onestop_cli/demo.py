"""``onestop demo``: the whole pipeline once, on real components, then everything stops.

Kafka (local KRaft broker) → simulator → Faust worker → ClickHouse writer →
backlog per commune read back from ClickHouse, checked against an
independent count of the simulated events (``producers.sim_expect``, which
shares no code with the worker).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from onestop.communes import commune
from onestop.settings import Settings, get_settings
from ops.services import Services

console = Console()


def _demo_settings(base: Settings) -> Settings:
    # A simulation is judged on its own (event) clock, so the report is the same on every run.
    return base.model_copy(update={"home": base.home / "demo", "clickhouse_dsn": "", "clock": "event"})


def demo(
    communes: int = typer.Option(20, help="Communes to simulate (first N of the province)."),
    dossiers: int = typer.Option(5000, help="Dossiers to simulate."),
    seed: int = typer.Option(42, help="Simulation seed."),
    keep: bool = typer.Option(False, "--keep", help="Keep the demo data directory afterwards (default: kept, wiped at next start)."),
) -> None:
    """Run Kafka, the worker and the sink; simulate; print the backlog per commune from ClickHouse; stop everything."""
    from ops import broker, topics
    from producers.run import run_simulation
    from producers.sim_expect import expected_backlog
    from producers.simulator import SimulationConfig, simulate

    settings = _demo_settings(get_settings())
    broker.stop(settings)
    if settings.home.exists():
        shutil.rmtree(settings.home)
    settings.home.mkdir(parents=True)
    services = Services(settings)
    started = time.monotonic()
    try:
        with console.status("starting Apache Kafka (KRaft, 127.0.0.1)…"):
            broker.start(settings)
            topics.create_topics(settings)
        console.print(f"[green]✓[/green] Kafka on {settings.kafka_bootstrap}")
        services.start("worker", "worker")
        services.start("sink", "sink")
        console.print(f"[green]✓[/green] worker and sink started (logs in {services.logs})")
        cfg = SimulationConfig(province_code=settings.province_code, communes=communes, dossiers=dossiers,
                               seed=seed, start=date(2026, 11, 2), days=10)
        run_simulation(settings, cfg, console=console)
        _wait(settings, services)
        services.stop_all()
        expected = expected_backlog(simulate(cfg))
        _report(settings, expected)
        _ioc_report(settings)
    finally:
        services.stop_all()
        broker.stop(settings)
    console.print(f"demo finished in {time.monotonic() - started:.0f}s; everything it started is stopped. "
                  f"Data kept in {settings.home}")


def _wait(settings: Settings, services: Services) -> None:
    from ops.lag import pipeline_groups, wait_caught_up

    def poll(lags: dict[str, int]) -> None:
        services.check_alive()
        status.update(f"waiting for the pipeline to catch up: " + ", ".join(f"{g} lag {n:,}" for g, n in lags.items()))

    with console.status("waiting for the pipeline to catch up…") as status:
        wait_caught_up(settings, pipeline_groups(settings), timeout=600, settle=4.0, on_poll=poll)
    console.print("[green]✓[/green] worker and sink caught up")


def _ioc_report(settings: Settings) -> None:
    from onestop_cli.report_html import write

    with console.status("drawing the IOC panels…"):
        index, png = write(settings, settings.home / "ioc-report")
    console.print(f"[green]✓[/green] IOC report (same panels as the Grafana dashboards): {index}")
    console.print(f"[green]✓[/green] overview PNG: {png}" if png else "overview PNG skipped: no Chromium on this machine")


def _report(settings: Settings, expected: Counter) -> None:
    from onestop_cli.output import print_rows
    from sinks.clickhouse import connect, query

    client = connect(settings)
    db = settings.clickhouse_database
    _, rows = query(client, f"SELECT b.commune_code, c.name, b.open_dossiers, b.within_due, b.due_soon, b.overdue "
                            f"FROM {db}.backlog_by_commune AS b LEFT JOIN {db}.communes AS c FINAL "
                            f"ON c.code = b.commune_code WHERE b.open_dossiers != 0 "
                            f"ORDER BY b.open_dossiers DESC, b.commune_code")
    _, [(total_events,)] = query(client, f"SELECT count() FROM {db}.dossier_events FINAL")
    _, ontime = query(client, f"SELECT outcome, sum(dossiers) FROM {db}.ontime WHERE granularity = 'mo' "
                              f"GROUP BY outcome")
    _, alerts = query(client, f"SELECT kind, count() FROM {db}.alerts FINAL GROUP BY kind ORDER BY kind")
    client.close()
    print_rows(["commune", "name", "open", "within due", "due soon", "overdue"], rows,
               title="Backlog per commune (read back from ClickHouse)")
    got = {code: n for code, _, n, *_ in rows}
    console.print(f"{sum(got.values()):,} open dossiers in {len(got)} communes; {total_events:,} raw events stored")
    resolved = dict(ontime)
    if resolved:
        on_time = resolved.get("before_due", 0) + resolved.get("on_due", 0)
        console.print(f"resolved: {sum(resolved.values()):,} — before due {resolved.get('before_due', 0):,}, "
                      f"on due {resolved.get('on_due', 0):,}, overdue {resolved.get('overdue', 0):,}; "
                      f"on-time rate {on_time / sum(resolved.values()):.1%}")
    console.print("alerts: " + (", ".join(f"{k} {n:,}" for k, n in alerts) or "none"))
    if got == dict(expected):
        console.print("[green]✓ backlog matches an independent count of the simulated events[/green]")
    else:
        diff = {c: (got.get(c, 0), expected.get(c, 0)) for c in set(got) | set(expected)
                if got.get(c, 0) != expected.get(c, 0)}
        console.print(f"[red]✗ backlog differs from the independent count (got, expected): {diff}[/red]")
        raise typer.Exit(1)
