"""Pipeline commands: simulate, worker, sink, query, schema."""

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
    dossiers: int = typer.Option(1000, "--dossiers", "-n", help="Number of dossiers received over the period."),
    seed: int = typer.Option(42, "--seed", "-s", help="Random seed: the same seed gives byte-identical events."),
    province: Optional[str] = typer.Option(None, "--province", "-p", help="Two-digit province code [env: ONESTOP_PROVINCE_CODE, default 42 Hà Tĩnh]."),
    start: str = typer.Option("2026-11-02", help="First simulated day (ISO date, Asia/Ho_Chi_Minh)."),
    days: int = typer.Option(10, help="Length of the simulated period in calendar days."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print events as JSON lines instead of publishing them."),
) -> None:
    """Publish simulated commune dossier lifecycles to Kafka (deterministic per seed)."""
    from producers.run import run_simulation
    from producers.simulator import SimulationConfig

    settings = get_settings()
    cfg = SimulationConfig(
        province_code=province or settings.province_code, communes=communes, dossiers=dossiers,
        seed=seed, start=date.fromisoformat(start), days=days,
    )
    run_simulation(settings, cfg, dry_run=dry_run, console=console)


def worker() -> None:
    """Run the Faust stream worker: per-dossier state, rolling backlog, dead letters."""
    from streams.app import run_worker

    settings = get_settings()
    run_worker(settings, loglevel=settings.log_level.lower())


def sink() -> None:
    """Run the ClickHouse writer: raw events and backlog counts, deduplicated inserts."""
    from sinks.writer import run_sink

    run_sink(get_settings())


def query(
    sql: str = typer.Argument(..., help="A ClickHouse SQL query; tables live in ONESTOP_CLICKHOUSE_DATABASE (default ioc)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, tsv or jsonl."),
) -> None:
    """Run a SQL query against the pipeline's ClickHouse and print the result."""
    from sinks.clickhouse import StoreError, connect, query as run_query

    settings = get_settings()
    try:
        client = connect(settings)
        client.command(f"CREATE DATABASE IF NOT EXISTS {settings.clickhouse_database}")
        columns, rows = run_query(client, sql)
    except StoreError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    print_rows(columns, rows, fmt)


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


def register(app: typer.Typer) -> None:
    from onestop.cli.demo import demo

    app.command(help="Publish simulated commune dossier lifecycles to Kafka (deterministic per seed).")(simulate)
    app.command(help="Run the Faust stream worker: dossier state, rolling backlog, dead letters.")(worker)
    app.command(help="Run the ClickHouse writer for raw events and backlog counts.")(sink)
    app.command(help="Run a SQL query against ClickHouse (chDB by default) and print the result.")(query)
    app.command(help="Write or check the JSON Schema of the event contract.")(schema)
    app.command(help="Run the whole pipeline once: Kafka, worker, sink, simulator, backlog report.")(demo)
