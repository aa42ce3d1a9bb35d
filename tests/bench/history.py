"""History at scale: load years of one province into chDB and time every IOC panel's query on it.

    python -m tests.bench.history                      # 5 years, 100 million events (make bench-history)
    python -m tests.bench.history --events 2000000     # the reduced run CI makes

It prints the load rate (events per second through INSERT … SELECT, see
tests/bench/history_data.py for what is generated and how) and, for each panel
of the province overview and the commune drill-down, the median and the worst
of ``--runs`` timed executions after one warm-up, on the history's last day.
No assertion is made on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dashboards.catalog import COMMUNE, PROVINCE, scoped_panels
from dashboards.macros import TimeRange, expand, interval_for
from onestop.settings import Settings
from sinks import schema
from sinks.clickhouse import connect, ensure_schema
from tests.bench.history_data import EVENTS_PER_DOSSIER, History, counters_inserts, events_insert, facts_table

TARGET_MS = 500


def _timed(client, sql: str) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    client.command(sql)
    return time.perf_counter() - started


def load(client, db: str, history: History, chunk: int) -> dict:  # type: ignore[no-untyped-def]
    seconds, first = 0.0, 0
    while first < history.dossiers:
        count = min(chunk, history.dossiers - first)
        seconds += _timed(client, events_insert(history, db, first, count))
        first += count
        stored = client.command(f"SELECT count() FROM {db}.{schema.EVENTS}")
        print(f"  events: {int(stored):>12,} stored, {int(stored) / seconds:,.0f} events/s", flush=True)
    events = int(client.command(f"SELECT count() FROM {db}.{schema.EVENTS}"))
    derived = sum(_timed(client, s) for s in facts_table(history, db) + counters_inserts(history, db))
    sizes = {t: int(client.command(f"SELECT count() FROM {db}.{t}")) for t in
             (schema.EVENTS, schema.THROUGHPUT_PARTS, schema.ONTIME_PARTS, schema.BACKLOG_PARTS, schema.ALERTS, "dossiers")}
    parts = int(client.command(f"SELECT count() FROM system.parts WHERE database = '{db}' AND table = '{schema.EVENTS}' AND active"))
    return {"events": events, "load_seconds": round(seconds, 1), "events_per_second": round(events / seconds),
            "derived_seconds": round(derived, 1), "rows": sizes, "event_parts": parts}


def busiest_commune(client, db: str) -> str:  # type: ignore[no-untyped-def]
    return str(client.command(f"SELECT commune_code FROM {db}.{schema.BACKLOG} ORDER BY open_dossiers DESC LIMIT 1"))


def time_panels(client, db: str, end: datetime, commune: str, runs: int) -> list[dict]:  # type: ignore[no-untyped-def]
    time_range = TimeRange.ending(end, timedelta(days=7))
    out = []
    for dashboard in (PROVINCE, COMMUNE):
        for _, panel in scoped_panels(dashboard, db):
            sql = expand(panel.sql, time_range, interval_for(time_range, min_interval=timedelta(hours=1)),
                         {"commune": commune})
            rows = len(client.query(sql).result_rows)  # warm-up
            times, cpu = [], []
            for _ in range(runs):
                started, cpu_started = time.perf_counter(), time.process_time()
                client.query(sql)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)  # chDB's threads are this process's
            out.append({"dashboard": dashboard.uid, "panel": panel.key, "rows": rows,
                        "median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
                        "cpu_ms": round(statistics.median(cpu), 1)})
    return out


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    import chdb

    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "chdb": getattr(chdb, "__version__", "?"), "load_average": os.getloadavg(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def report(loaded: dict, timings: list[dict]) -> None:
    print(f"\nloaded {loaded['events']:,} events in {loaded['load_seconds']}s: {loaded['events_per_second']:,} events/s "
          f"({loaded['event_parts']} active parts); worker counters, alerts and dossiers derived in {loaded['derived_seconds']}s")
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in loaded["rows"].items()))
    print(f"\n{'dashboard':<18} {'panel':<18} {'rows':>5} {'median ms':>10} {'max ms':>8} {'CPU ms':>8}")
    for t in timings:
        flag = "" if t["max_ms"] < TARGET_MS else f"  over {TARGET_MS} ms"
        print(f"{t['dashboard']:<18} {t['panel']:<18} {t['rows']:>5} {t['median_ms']:>10} {t['max_ms']:>8} "
              f"{t['cpu_ms']:>8}{flag}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other processes on the machine slow the wall times)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000_000, help="events to generate (5 per dossier)")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=4_000_000, help="dossiers per INSERT … SELECT")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each panel query")
    parser.add_argument("--home", type=Path, help="keep the store here (default: a temporary directory, removed)")
    parser.add_argument("--reuse", action="store_true", help="time the panels on the store in --home without loading")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = parser.parse_args(argv)
    history = History(dossiers=args.events // EVENTS_PER_DOSSIER, years=args.years)
    home = args.home or Path(tempfile.mkdtemp(prefix="onestop-history-"))
    settings = Settings(home=home, clickhouse_dsn="")
    db = settings.clickhouse_database
    client = connect(settings)
    try:
        print(f"store {home / 'chdb'}; machine {machine()}", flush=True)
        if args.reuse:
            loaded = json.loads((home / "loaded.json").read_text())
        else:
            ensure_schema(client, db)
            loaded = load(client, db, history, args.chunk)
            (home / "loaded.json").write_text(json.dumps(loaded))
        timings = time_panels(client, db, history.end, busiest_commune(client, db), args.runs)
        report(loaded, timings)
        if args.json:
            args.json.write_text(json.dumps({"machine": machine(), "load": loaded, "panels": timings}, indent=2))
    finally:
        client.close()
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
