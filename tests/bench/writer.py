"""The ClickHouse writer's rate: rows per second into chDB through the real ``onestop sink``.

    python -m tests.bench.writer [--events 100000] [--partitions 12] [--json out.json]

Starts its own Kafka broker in a temporary ``ONESTOP_HOME`` on free loopback
ports, publishes ``--events`` simulated events to ``dossier.events``, then
starts ``onestop sink`` on the backlog and times its consumer group from the
first committed progress to lag 0 (``tests.bench.run.measure_group``). Each
event is two rows (``dossier_events`` and ``event_deliveries``); the rows are
counted in the store afterwards. ``measure_writer`` is reused by
``tests.bench.history_store``. No assertion is made on speed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path

from onestop.settings import Settings
from tests.bench.run import (BenchServices, GroupWatch, Result, _raise_interrupt, finish, free_ports, machine_info,
                             measure_group, publish)


def bench_settings(home: Path, partitions: int, **extra: object) -> Settings:
    port, controller_port = free_ports(2)
    return Settings(home=home, kafka_port=port, kafka_controller_port=controller_port,
                    kafka_bootstrap=f"127.0.0.1:{port}", partitions=partitions, clock="event", web_port=0,
                    metrics_port=0, clickhouse_dsn="", **extra)


def stored_rows(settings: Settings) -> dict[str, int]:
    from sinks.clickhouse import connect, query

    client = connect(settings)
    try:
        db = settings.clickhouse_database
        return {t: query(client, f"SELECT count() FROM {db}.{t} FINAL")[1][0][0]
                for t in ("dossier_events", "event_deliveries")}
    finally:
        client.close()


def measure_writer(settings: Settings, watch: GroupWatch, services: BenchServices, timeout: float) -> Result:
    """``onestop sink`` over the published backlog; its rate in rows/s (events × rows per event)."""
    result = measure_group("sink", settings.sink_group, watch, services, lambda: services.start("sink", "sink"),
                           timeout)
    services.stop("sink")
    rows = stored_rows(settings)
    per_event = sum(rows.values()) / max(1, watch.total)
    result.extra.update(rows=rows, rows_per_s=round(result.rate * per_event, 1))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.writer", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--partitions", type=int, default=12)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    from ops import broker
    from ops.topics import create_topics

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    home = Path(tempfile.mkdtemp(prefix="onestop-bench-writer-"))
    settings = bench_settings(home, args.partitions)
    services = BenchServices(settings)
    code = 1
    try:
        broker.start(settings)
        create_topics(settings)
        publish(settings, args.events, args.seed, args.timeout)
        watch = GroupWatch(settings)
        try:
            result = measure_writer(settings, watch, services, args.timeout)
        finally:
            watch.close()
        print(f"writer  {result.events:,} events in {result.seconds:.2f} s = {result.rate:,.0f} events/s, "
              f"{result.extra['rows_per_s']:,.0f} rows/s into chDB  (stored {result.extra['rows']})")
        info = machine_info(settings, "asyncio")
        print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "versions"))
        if args.json:
            args.json.write_text(json.dumps({"writer": result.__dict__, "machine": info}, indent=2, default=str))
        code = 0
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        finish(settings, home, code, services)
    return code


if __name__ == "__main__":
    sys.exit(main())
