"""Rebuild benchmark on real Kafka and chDB: ``onestop rebuild`` next to a raw consumer, in one run.

    python -m tests.bench.rebuild [--events 100000] [--partitions 12] [--workers N]
                                  [--json out.json] [--profile] [--seed 42]

What it does, in order (docs/benchmarks.md, "Rebuilding the store from dossier.events"):

1. starts its own Kafka broker (``ops.broker``) in a temporary ``ONESTOP_HOME`` on free
   loopback ports, creates the pipeline topics (``--partitions`` each), simulates
   ``--events`` events and publishes them once;
2. ``raw``: a plain kafka-python ``KafkaConsumer`` with the rebuild's fetch settings,
   assigned every partition from the beginning, that decodes each value into
   ``onestop.events.DossierEvent`` and does nothing else; timed from its first poll to the
   last record decoded;
3. ``rebuild``: ``ops.rebuild.run_rebuild`` into a chDB store in the same home whose schema
   is made first (as a sink would have), timed from the call to its return: planning, the
   worker processes, opening the store, truncation, the fold, every insert;
4. prints both rates, CPU µs per event (this process and its children), the ratio and the
   targets (50,000 events/s, 50% of the raw consumer), the machine; writes the same as JSON
   with ``--json``; with ``--profile`` then profiles one more rebuild in one process
   (cProfile) and prints where its time goes. It stops its broker at the end, also on
   Ctrl-C, SIGTERM or failure.

No assertion is made on speed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from onestop.settings import Settings
from tests.bench.run import _raise_interrupt, free_ports, machine_info, print_machine, publish

TARGET_RATE = 50_000.0  # events/s of the rebuild
TARGET_SHARE = 0.5  # of the raw consumer's rate


@dataclass
class Result:
    path: str
    events: int
    seconds: float
    cpu_s: float  # this process and its children, user + system
    method: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return round(self.cpu_s / self.events * 1e6, 1) if self.events else 0.0


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure_raw(settings: Settings, timeout: float) -> Result:
    from kafka import TopicPartition

    from onestop import events
    from ops.rebuild_worker import consumer_for

    consumer = consumer_for(settings, "onestop-bench-raw")
    try:
        tps = [TopicPartition(settings.topic_events, p)
               for p in sorted(consumer.partitions_for_topic(settings.topic_events) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        total = sum(consumer.end_offsets(tps).values())
        decode, contract_error = events.decode, events.ContractError
        n = bad = 0
        cpu, started = _cpu(), time.perf_counter()
        deadline = started + timeout
        while n < total:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    try:
                        decode(record.value)
                    except contract_error:
                        bad += 1
                n += len(records)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"raw consumer read {n:,} of {total:,} records in {timeout:.0f}s")
        seconds, cpu_s = time.perf_counter() - started, _cpu() - cpu
    finally:
        consumer.close()
    return Result("raw", n, seconds, cpu_s, "first poll → last record decoded (one consumer, this process)",
                  {"contract_errors": bad})


def measure_rebuild(settings: Settings, workers: int | None) -> Result:
    from ops.rebuild import run_rebuild
    from sinks.clickhouse import connect, ensure_schema

    client = connect(settings)  # the store as a sink leaves it: schema made, communes loaded
    try:
        ensure_schema(client, settings.clickhouse_database)
    finally:
        client.close()
    gc.collect()
    cpu, started = _cpu(), time.perf_counter()
    result = run_rebuild(settings, workers=workers)
    seconds, cpu_s = time.perf_counter() - started, _cpu() - cpu
    return Result("rebuild", result.records, seconds, cpu_s,
                  f"call → return of ops.rebuild.run_rebuild ({result.workers} worker "
                  f"process{'es' if result.workers != 1 else ''}, chDB)",
                  {"rows": result.rows, "workers": result.workers, "refused": result.refused,
                   "failed": result.failed, "unstorable": result.unstorable})


def profile_rebuild(settings: Settings, top: int = 25) -> str:
    """One more rebuild, in this process only (one partition group), under cProfile."""
    from ops.rebuild import run_rebuild

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run_rebuild(settings, workers=1)
    finally:
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def print_table(results: dict[str, Result]) -> None:
    raw, rebuild = results.get("raw"), results.get("rebuild")
    print()
    print(f"{'path':<8} {'events':>9} {'seconds':>9} {'events/s':>10} {'% of raw':>9} {'cpu µs/ev':>10}  method")
    for r in results.values():
        share = f"{100 * r.rate / raw.rate:.0f}%" if raw and r is not raw else "-"
        print(f"{r.path:<8} {r.events:>9,} {r.seconds:>9.2f} {r.rate:>10,.0f} {share:>9} {r.cpu_us_per_event:>10,.1f}"
              f"  {r.method}")
    print("(cpu µs/ev: CPU time of this process and of its child processes per event, all cores)")
    if rebuild is not None:
        verdict = [f"rebuild {rebuild.rate:,.0f} events/s vs target {TARGET_RATE:,.0f}: "
                   + ("met" if rebuild.rate >= TARGET_RATE else "NOT met")]
        if raw is not None:
            share = rebuild.rate / raw.rate
            verdict.append(f"{100 * share:.0f}% of the raw consumer vs target {100 * TARGET_SHARE:.0f}%: "
                           + ("met" if share >= TARGET_SHARE else "NOT met"))
        print("targets: " + "; ".join(verdict))
        rows = ", ".join(f"{t} {n:,}" for t, n in rebuild.extra["rows"].items())
        print(f"rows written: {rows}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench.rebuild", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="events to publish, read and rebuild (default 100000)")
    p.add_argument("--partitions", type=int, default=12, help="partitions of every topic (default 12, as Settings)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the rebuild (default: its own choice)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this path")
    p.add_argument("--profile", action="store_true", help="then profile one more single-process rebuild (cProfile)")
    p.add_argument("--seed", type=int, default=42, help="simulation seed")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed for the raw read (default 60 + events/1000)")
    args = p.parse_args(argv)
    if args.events < 1 or args.partitions < 1 or (args.workers is not None and args.workers < 1):
        p.error("--events, --partitions and --workers must be positive")
    args.timeout = args.timeout or 60.0 + args.events / 1000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ops import broker
    from ops.topics import create_topics

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    home = Path(tempfile.mkdtemp(prefix="onestop-bench-rebuild-"))
    port, controller_port = free_ports(2)
    settings = Settings(home=home, kafka_port=port, kafka_controller_port=controller_port,
                        kafka_bootstrap=f"127.0.0.1:{port}", partitions=args.partitions, clock="event",
                        web_port=0, metrics_port=0)
    results: dict[str, Result] = {}
    code = 1
    try:
        info = machine_info(settings, "asyncio")
        print(f"onestop-ioc rebuild benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
        print_machine(info)
        broker.start(settings)
        create_topics(settings)
        total, seconds, kinds = publish(settings, args.events, args.seed, timeout=args.timeout)
        print(f"published {total:,} simulated events in {seconds:.1f}s to {args.partitions} partitions: "
              + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()))
        for name in ("raw", "rebuild"):
            print(f"measuring {name}…", flush=True)
            results[name] = (measure_raw(settings, args.timeout) if name == "raw"
                             else measure_rebuild(settings, args.workers))
            r = results[name]
            print(f"  {name}: {r.rate:,.0f} events/s ({r.events:,} events in {r.seconds:.2f}s)", flush=True)
        print_table(results)
        profile = profile_rebuild(settings) if args.profile else None
        if profile:
            print("\nprofile of one single-process rebuild (cProfile, by own time):")
            print(profile)
        if args.json is not None:
            raw, rebuild = results["raw"], results["rebuild"]
            doc = {
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": "python -m tests.bench.rebuild " + " ".join(argv if argv is not None else sys.argv[1:]),
                "machine": info,
                "config": {"events": total, "partitions": args.partitions, "workers": args.workers, "seed": args.seed},
                "results": {k: {**asdict(v), "rate": v.rate, "cpu_us_per_event": v.cpu_us_per_event}
                            for k, v in results.items()},
                "rebuild_pct_of_raw": round(100 * rebuild.rate / raw.rate, 1),
                "targets": {"rebuild_events_per_s": TARGET_RATE, "rebuild_share_of_raw": TARGET_SHARE},
            }
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
            print(f"figures written to {args.json}")
        code = 0
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}); stopping the broker", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        try:
            broker.stop(settings)
        finally:
            if code == 1:
                print(f"broker stopped; logs kept in {home} for a look", file=sys.stderr)
            else:
                shutil.rmtree(home, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
