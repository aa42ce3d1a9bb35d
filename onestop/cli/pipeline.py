"""Pipeline commands: simulate, worker, sink, schema, config (``onestop query`` is in ``history``)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from onestop.settings import get_settings

console = Console()


def simulate(
    communes: Optional[int] = typer.Option(None, "--communes", "-c", help="Simulate the first N communes of the province (default: all)."),
    dossiers: Optional[int] = typer.Option(None, "--dossiers", "-n", help="The volume knob: dossiers arriving over the period, exactly (default 1000)."),
    per_commune_day: Optional[float] = typer.Option(None, "--per-commune-day", "-r", help="Instead of --dossiers: average dossiers per commune per working day (DOMAIN.md: tens to a few hundred; Hà Tĩnh 2020 ≈ 25)."),
    seed: int = typer.Option(42, "--seed", "-s", envvar="ONESTOP_SIMULATE_SEED", help="Random seed: the same arguments and seed give byte-identical events."),
    province: Optional[str] = typer.Option(None, "--province", "-p", help="Two-digit province code (env ONESTOP_PROVINCE_CODE; default 42, Hà Tĩnh: 69 communes)."),
    start: Optional[str] = typer.Option(None, help="First simulated day, ISO date in Asia/Ho_Chi_Minh (default 2026-11-02; with --live: now)."),
    days: int = typer.Option(10, help="Length of the simulated period in calendar days (arrivals on working days only)."),
    speed: float = typer.Option(0.0, "--speed", envvar="ONESTOP_SIMULATE_SPEED", help="Simulated seconds per wall second; 0 = as fast as possible (3600 = one simulated hour per second)."),
    live: bool = typer.Option(False, "--live", help="Run on the wall clock: start now and send each event when its time comes; stops after --days or Ctrl-C."),
    online_share: Optional[float] = typer.Option(None, "--online-share", help="Share of dossiers filed online (default 0.30: Hà Tĩnh 29.1%; provinces 16.94%, national 39.98%)."),
    late_rate: Optional[float] = typer.Option(None, "--late-rate", help="Share of accepted dossiers resolved after their due date (default 0.02; seen: 0.2%-3.5%)."),
    rate: Optional[list[str]] = typer.Option(None, "--rate", help="Set any other rate of the simulator, NAME=VALUE, repeatable (e.g. --rate supplement_rate=0.1); see docs/simulator.md."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print events as JSON lines to stdout instead of publishing them."),
) -> None:
    """Publish simulated commune dossier lifecycles to Kafka (deterministic per seed)."""
    from dataclasses import replace
    from datetime import timezone

    from onestop.workcal import VN_TZ
    from producers.run import WallClock, parse_rates, run_simulation
    from producers.simulator import SimulationConfig, SimulationError, dossiers_for_rate

    err = Console(stderr=True)  # stdout carries the events in --dry-run
    settings = get_settings()
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


def worker() -> None:
    """Run the Faust stream worker: per-dossier state, rolling backlog, dead letters."""
    from streams.app import run_worker

    settings = get_settings()
    run_worker(settings, loglevel=settings.log_level.lower())


def sink() -> None:
    """Run the ClickHouse writer: raw events and backlog counts, deduplicated inserts."""
    from sinks.writer import run_sink

    run_sink(get_settings())


def print_rows(columns: list[str], rows: list[tuple], fmt: str = "table", title: str | None = None) -> None:
    if fmt == "tsv":
        print("\t".join(columns))
        for r in rows:
            print("\t".join("" if v is None else str(v) for v in r))
    elif fmt == "jsonl":
        for r in rows:
            print(json.dumps(dict(zip(columns, r)), default=str, ensure_ascii=False))
    else:
        table = Table(*columns, title=title)
        for r in rows:
            table.add_row(*("" if v is None else str(v) for v in r))
        console.print(table)


def schema(
    out: Path = typer.Option(Path("onestop/schema/dossier-event.v1.json"), help="Where to write the JSON Schema."),
    check: bool = typer.Option(False, "--check", help="Fail if the file differs from the contract instead of writing it."),
) -> None:
    """Write (or --check) the JSON Schema of the event contract v1."""
    from onestop.events import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            console.print(f"[red]{out} is out of date; run `onestop schema`[/red]")
            raise typer.Exit(1)
        console.print(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {out}")


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
    from onestop.cli.demo import demo

    app.command(help="Publish simulated commune dossier lifecycles to Kafka (deterministic per seed).")(simulate)
    app.command(help="Run the Faust stream worker: dossier state, backlog, throughput, on-time counts, SLA alerts.")(worker)
    app.command(help="Run the ClickHouse writer: raw events, counters, alerts and dead letters.")(sink)
    app.command(help="Write or check the JSON Schema of the event contract.")(schema)
    app.command(help="Show every setting, its ONESTOP_* variable and its current value.")(config)
    app.command(help="Run the whole pipeline once: Kafka, worker, sink, simulator, backlog report.")(demo)
