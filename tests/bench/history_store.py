"""The history issue's benchmarks in one run: the writer, the rebuild next to a raw consumer, and freshness.

    python -m tests.bench.history_store [--events 100000] [--rate 500] [--seconds 60] [--json out.json]

One Kafka broker, started in a temporary ``ONESTOP_HOME`` on free loopback ports, serves three measurements
made one after the other, so their figures come from the same machine at the same time:

1. ``--events`` simulated events are published once to ``dossier.events``;
2. ``raw``: a plain kafka-python consumer that only decodes them (``tests.bench.rebuild.measure_raw``);
3. ``rebuild``: ``onestop rebuild`` of a chDB store from them (``tests.bench.rebuild.measure_rebuild``);
4. ``writer``: the real ``onestop sink`` over the same backlog into a store of its own, in rows/s
   (``tests.bench.writer.measure_writer``);
5. ``freshness``: worker and sink on topics of their own, events published at ``--rate`` for
   ``--seconds``, each timed from its ``occurred_at`` to the first query through the sink that returns
   it (``tests.bench.freshness.measure``).

It prints one table with the targets (rebuild ≥ 50,000 events/s and ≥ 50% of the raw consumer;
freshness p99 < 2 s) and the machine, writes the same as JSON with ``--json``, and stops everything it
started. No assertion is made on speed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from onestop.settings import Settings
from tests.bench import freshness, rebuild, writer
from tests.bench.run import BenchServices, GroupWatch, _raise_interrupt, finish, machine_info, publish


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench.history_store", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="events for the writer and the rebuild")
    p.add_argument("--rate", type=float, default=500.0, help="freshness: events published per second")
    p.add_argument("--seconds", type=float, default=60.0, help="freshness: how long to publish")
    p.add_argument("--partitions", type=int, default=12)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--timeout", type=float, default=1200.0)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ops import broker
    from ops.topics import create_topics

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    home = Path(tempfile.mkdtemp(prefix="onestop-bench-history-store-"))
    settings = writer.bench_settings(home / "rebuild", args.partitions)
    sink = settings.model_copy(update={"home": home / "writer"})
    live = settings.model_copy(update={
        "home": home / "live", "clock": "wall", "app_id": "bench-history-freshness", "sink_group": "bench-fresh-sink",
        **{f: f"{getattr(settings, f)}.fresh" for f in ("topic_events", "topic_ticks", "topic_metrics",
                                                      "topic_alerts", "topic_dlq", "topic_state")}})
    services = {name: BenchServices(s) for name, s in (("writer", sink), ("live", live))}
    figures: dict = {}
    code = 1
    try:
        info = machine_info(settings, "asyncio")
        broker.start(settings)
        create_topics(settings)
        create_topics(live)
        total, seconds, _ = publish(settings, args.events, args.seed, timeout=args.timeout)
        print(f"published {total:,} events in {seconds:.1f} s to {args.partitions} partitions", flush=True)
        raw = rebuild.measure_raw(settings, args.timeout)
        print(f"raw consumer  {raw.rate:,.0f} events/s", flush=True)
        rebuilt = rebuild.measure_rebuild(settings, None)
        print(f"rebuild       {rebuilt.rate:,.0f} events/s", flush=True)
        watch = GroupWatch(sink)
        try:
            written = writer.measure_writer(sink, watch, services["writer"], args.timeout)
        finally:
            watch.close()
        print(f"writer        {written.rate:,.0f} events/s = {written.extra['rows_per_s']:,.0f} rows/s", flush=True)
        reader = freshness.start_pipeline(live, services["live"], worker=True)
        fresh = freshness.measure(live, reader, rate=args.rate, seconds=args.seconds, seed=args.seed)
        services["live"].check_alive()
        figures = {
            "raw_events_per_s": round(raw.rate), "rebuild_events_per_s": round(rebuilt.rate),
            "rebuild_pct_of_raw": round(100 * rebuilt.rate / raw.rate, 1),
            "writer_events_per_s": round(written.rate), "writer_rows_per_s": round(written.extra["rows_per_s"]),
            "freshness": fresh,
        }
        print()
        print(f"{'measure':<34}{'figure':>22}  target")
        print(f"{'raw consumer (decode only)':<34}{raw.rate:>15,.0f} ev/s")
        print(f"{'rebuild':<34}{rebuilt.rate:>15,.0f} ev/s  ≥ {rebuild.TARGET_RATE:,.0f} ev/s")
        print(f"{'rebuild / raw consumer':<34}{figures['rebuild_pct_of_raw']:>20.1f} %  ≥ "
              f"{100 * rebuild.TARGET_SHARE:.0f} %")
        print(f"{'writer into chDB':<34}{written.extra['rows_per_s']:>13,.0f} rows/s  ({written.rate:,.0f} ev/s)")
        print(f"{'freshness at %g ev/s: p50' % args.rate:<34}{fresh['p50_s']:>20.3f} s")
        print(f"{'freshness p99':<34}{fresh['p99_s']:>20.3f} s  < {freshness.TARGET_P99_S:g} s")
        print(f"{'freshness max':<34}{fresh['max_s']:>20.3f} s")
        print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "versions"))
        if args.json:
            args.json.write_text(json.dumps({
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": info,
                "command": "python -m tests.bench.history_store " + " ".join(argv if argv is not None else sys.argv[1:]),
                "figures": figures, "raw": asdict(raw), "rebuild": asdict(rebuilt)}, indent=2, default=str))
        code = 0
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        finish(settings, home, code, *services.values())
    return code


if __name__ == "__main__":
    sys.exit(main())
