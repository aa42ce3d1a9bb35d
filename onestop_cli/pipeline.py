"""Pipeline commands: simulate, worker, sink, schema, config (``onestop query`` is in ``history``)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from onestop.settings import Settings, get_settings
from onestop_cli.options import settings_options
from onestop_cli.output import print_rows, write_or_check

console = Console()


def simulate(
    communes: Optional[int] = typer.Option(None, "--communes", "-c", help="Simulate the first N communes of the province (default: all)."),
    dossiers: Optional[int] = typer.Option(None, "--dossiers", "-n", help="The volume knob: dossiers arriving over the period, exactly (default 1000)."),
    per_commune_day: Optional[float] = typer.Option(None, "--per-commune-day", "-r", help="Instead of --dossiers: average dossiers per commune per working day (DOMAIN.md: tens to a few hundred; Hà Tĩnh 2020 ≈ 25)."),
    seed: Optional[int] = typer.Option(None, "--seed", "-s", help="Random seed: the same arguments and seed give byte-identical events (env ONESTOP_SIMULATE_SEED; default 42)."),
    province: Optional[str] = typer.Option(None, "--province", "-p", help="Two-digit province code (env ONESTOP_PROVINCE_CODE; default 42, Hà Tĩnh: 69 communes)."),
    start: Optional[str] = typer.Option(None, help="First simulated day, ISO date in Asia/Ho_Chi_Minh (default 2026-11-02; with --live: now)."),
    days: int = typer.Option(10, help="Length of the simulated period in calendar days (arrivals on working days only)."),
    speed: Optional[float] = typer.Option(None, "--speed", help="Simulated seconds per wall second; 0 = as fast as possible (3600 = one simulated hour per second) (env ONESTOP_SIMULATE_SPEED; default 0)."),
    live: bool = typer.Option(False, "--live", help="Run on the wall clock: start now and send each event when its time comes; stops after --days or Ctrl-C."),
    online_share: Optional[float] = typer.Option(None, "--online-share", help="Share of dossiers filed online (default 0.30: Hà Tĩnh 29.1%; provinces 16.94%, national 39.98%)."),
    late_rate: Optional[float] = typer.Option(None, "--late-rate", help="Share of accepted dossiers resolved after their due date (default 0.02; seen: 0.2%-3.5%)."),
    rate: Optional[list[str]] = typer.Option(None, "--rate", help="Set any other rate of the simulator, NAME=VALUE, repeatable (e.g. --rate supplement_rate=0.1); see docs/simulator.md."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print events as JSON lines to stdout instead of publishing them."),
    service_calendar: Optional[str] = typer.Option(None, "--service-calendar", help="Simulate the service practices a service-calendar CSV declares ('packaged' for the packaged one); see docs/simulator.md."),
) -> None:
    """Publish simulated commune dossier lifecycles to Kafka (deterministic per seed)."""
    from dataclasses import replace
    from datetime import timezone

    from onestop.workcal import VN_TZ
    from producers.run import WallClock, parse_rates, run_simulation
    from producers.simulator import SimulationConfig, SimulationError, dossiers_for_rate

    err = Console(stderr=True)  # stdout carries the events in --dry-run
    settings = get_settings()
    seed = settings.simulate_seed if seed is None else seed
    speed = settings.simulate_speed if speed is None else speed
    try:
        if dossiers is not None and per_commune_day is not None:
            raise SimulationError("give either --dossiers or --per-commune-day, not both")
        if live and (start is not None or speed):
            raise SimulationError("--live runs from now at speed 1: drop --start and --speed")
        overrides = parse_rates(rate or [])
        if online_share is not None:
            overrides["online_share"] = online_share
        if late_rate is not None:
            overrides["late_rate"] = late_rate
        if service_calendar is not None:
            overrides["service_calendar_file"] = service_calendar
        clock = WallClock()
        now = clock.now().astimezone(timezone.utc).replace(microsecond=0) if live else None
        try:
            first_day = now.astimezone(VN_TZ).date() if now else date.fromisoformat(start or "2026-11-02")
        except ValueError:
            raise SimulationError(f"--start {start!r} is not an ISO date (YYYY-MM-DD)") from None
        cfg = SimulationConfig(province_code=province or settings.province_code, communes=communes,
                               dossiers=dossiers if dossiers is not None else 1000, seed=seed, start=first_day,
                               days=days, not_before=now, **overrides)
        if per_commune_day is not None:
            cfg = replace(cfg, dossiers=dossiers_for_rate(cfg, per_commune_day))
        run_simulation(settings, cfg, dry_run=dry_run, console=err, speed=speed, live=live, clock=clock)
    except SimulationError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


KAFKA = ("kafka_bootstrap", "partitions", "topic_events", "topic_dlq", "topic_state", "topic_metrics",
         "topic_alerts", "topic_ticks")
WORKER_SETTINGS = ("clock", "app_id", "web_host", "web_port", "metrics_port", "allowed_lateness_s", "live_lag",
                   "tick_interval_s", "worker_batch", "worker_batch_within_s", "worker_gc_threshold",
                   "publish_interval_s", "escalate_after_working_days", "due_soon_hours", "seq_gap_timeout_s",
                   "result_ready_while_waiting", "sla_boundary", "event_clock_quorum", "occurred_at_max_ahead_s",
                   "occurred_at_floor", "import_occurred_at_floor", "calendar_override", "catalogue_file",
                   "service_calendar_file", *KAFKA, "home", "log_level")
SINK_SETTINGS = ("clickhouse_dsn", "clickhouse_database", "sink_group", "sink_batch_size", "sink_linger_s",
                 "sink_retry_max_s", "metrics_port",
                 "occurred_at_max_ahead_s", "occurred_at_floor", "import_occurred_at_floor", "catalogue_file", *KAFKA,
                 "home", "log_level")


@settings_options(Settings, *WORKER_SETTINGS)
def worker(settings: Settings) -> None:
    """Run the Faust stream worker: per-dossier state, rolling backlog, throughput, on-time counts, SLA alerts.

    Every flag falls back to the ONESTOP_* variable shown beside it.
    """
    from streams.app import run_worker

    run_worker(settings, loglevel=settings.log_level.lower())


@settings_options(Settings, *SINK_SETTINGS)
def sink(settings: Settings) -> None:
    """Run the ClickHouse writer: raw events, counters, alerts and dead letters, deduplicated inserts.

    Every flag falls back to the ONESTOP_* variable shown beside it.
    """
    from sinks.writer import run_sink

    run_sink(settings)




def schema(
    out: Path = typer.Option(Path("onestop/schema/dossier-event.v1.1.json"), help="Where to write the JSON Schema."),
    check: bool = typer.Option(False, "--check", help="Fail if the file differs from the contract instead of writing it."),
) -> None:
    """Write (or --check) the JSON Schema of the event contract (v1.1; the v1 file stays as published)."""
    from onestop.events import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    write_or_check(out, text, check=check, command="onestop schema")


def config() -> None:
    """Show every setting with its environment variable, current value and meaning."""
    from onestop.settings import Settings

    settings = get_settings()
    rows = []
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        shown = "***" if "password" in name and value is not None else value
        rows.append((f"ONESTOP_{name.upper()}", "" if shown is None else str(shown), info.description or ""))
    print_rows(["variable", "value", "meaning"], rows, title="onestop settings (from the environment)")


def register(app: typer.Typer) -> None:
    app.command(help="Publish simulated commune dossier lifecycles to Kafka (deterministic per seed).")(simulate)
    app.command(help="Run the Faust stream worker: dossier state, backlog, throughput, on-time counts, SLA alerts.")(worker)
    app.command(help="Run the ClickHouse writer: raw events, counters, alerts and dead letters.")(sink)
    app.command(help="Write or check the JSON Schema of the event contract.")(schema)
    app.command(help="Show every setting, its ONESTOP_* variable and its current value.")(config)
