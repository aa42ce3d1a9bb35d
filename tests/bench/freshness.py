"""Freshness: how long after it happened an event can be read back through the query path.

    python -m tests.bench.freshness [--rate 500] [--seconds 60] [--partitions 12] [--poll-ms 50]
                                    [--no-worker] [--json out.json]

1. Starts its own Kafka broker in a temporary ``ONESTOP_HOME`` on free
   loopback ports, the real ``onestop sink`` (which owns the embedded store
   and answers queries) and, unless ``--no-worker``, the real ``onestop
   worker`` on the wall clock, as subprocesses.
2. Publishes simulated events at ``--rate`` events/s for ``--seconds`` with
   ``producers.publisher.Publisher``, each stamped at the moment it is handed
   to the publisher: ``occurred_at`` = that wall time (ms), due dates moved by
   the same amount, ``source = freshness-bench``.
3. Meanwhile it queries the store owner every ``--poll-ms`` through
   ``OwnerReader`` (the path ``onestop query`` takes) for the event ids not
   seen yet. An event's freshness is the time at which the first query that
   returned it had completed, minus its ``occurred_at``: publisher batching
   (linger 20 ms), Kafka, the sink's poll and insert, the poll interval and
   the query itself are all inside it.
4. Prints p50, p99, max and mean, how many events were seen, and the machine;
   stops everything it started, by pid, also on failure or Ctrl-C.

No assertion is made on time. ``tests/integration/test_freshness_bench.py``
runs it briefly. ``start_pipeline`` and ``measure`` also run on a broker that
another benchmark started.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from datetime import date, datetime, timezone
from pathlib import Path

import msgspec

from onestop.events import DossierEvent
from onestop.settings import Settings
from tests.bench.run import BenchServices, _raise_interrupt, finish, create_changelog, free_ports, machine_info

SOURCE = "freshness-bench"
WARMUP_EVENTS = 50
TARGET_P99_S = 2.0


def retimed(event: DossierEvent, at: datetime) -> DossierEvent:
    """The event as if it happened at ``at``; a due date moves with it."""
    shift = at - event.occurred_at
    return msgspec.structs.replace(event, occurred_at=at, source=SOURCE,
                                   due_at=event.due_at + shift if event.due_at else None)


def source_events(count: int, seed: int):  # type: ignore[no-untyped-def]
    from producers.simulator import SimulationConfig, simulate

    cfg = SimulationConfig(dossiers=max(200, count // 4), seed=seed, start=date(2026, 11, 2), days=30)
    for n, event in enumerate(simulate(cfg)):
        if n >= count:
            return
        yield event


class Publishing(threading.Thread):
    """Publishes at a steady rate; ``stamps`` holds (event_id, occurred_at epoch s) in publish order."""

    def __init__(self, settings: Settings, events, rate: float, seconds: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.settings, self.events, self.rate, self.seconds = settings, events, rate, seconds
        self.stamps: deque[tuple[str, float]] = deque()  # not yet taken by the watcher
        self.published: dict[str, float] = {}
        self.lock = threading.Lock()
        self.error: BaseException | None = None

    def run(self) -> None:
        from producers.publisher import Publisher

        try:
            with Publisher(self.settings, client_id="freshness-bench") as publisher:
                started, sent = time.monotonic(), 0
                for event in self.events:
                    wait = started + sent / self.rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    now = round(time.time(), 3)
                    stamped = retimed(event, datetime.fromtimestamp(now, timezone.utc))
                    publisher.publish(stamped)
                    with self.lock:
                        self.stamps.append((stamped.event_id, now))
                        self.published[stamped.event_id] = now
                    sent += 1
                publisher.flush(timeout=60)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc


def watch(reader, publishing: Publishing, poll_s: float, drain_s: float) -> tuple[dict[str, float], list[float]]:  # type: ignore[no-untyped-def]
    """First-seen time per event id (after the query returned), until every published event was seen."""
    from sinks.query_service import query_rows

    seen: dict[str, float] = {}
    unseen: deque[tuple[str, float]] = deque()
    durations: list[float] = []
    sql = ("SELECT event_id FROM ioc.dossier_events WHERE source = {source:String} "
           "AND occurred_at >= {since:DateTime64(3, 'UTC')}")
    deadline = None
    while True:
        with publishing.lock:
            while publishing.stamps:
                unseen.append(publishing.stamps.popleft())
        if not unseen and not publishing.is_alive():
            return seen, durations
        if not publishing.is_alive():
            deadline = deadline or time.monotonic() + drain_s
            if time.monotonic() > deadline:
                return seen, durations  # what is left unseen is reported
        began = time.monotonic()
        if unseen:
            _, rows = query_rows(reader, sql, {"source": SOURCE,
                                               "since": datetime.fromtimestamp(unseen[0][1], timezone.utc)})
            done = time.time()
            durations.append(time.monotonic() - began)
            for (event_id,) in rows:
                seen.setdefault(event_id, done)
            while unseen and unseen[0][0] in seen:
                unseen.popleft()
        time.sleep(max(0.0, poll_s - (time.monotonic() - began)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def start_pipeline(settings: Settings, services: BenchServices, *, worker: bool):  # type: ignore[no-untyped-def]
    """The sink (and the worker) on a running broker; returns the sink's query endpoint once it answers."""
    from sinks.store_owner import find_owner

    if worker:
        create_changelog(settings, settings.app_id)
        services.start("worker", "worker")
    services.start("sink", "sink")
    deadline = time.monotonic() + 120
    while (reader := find_owner(settings)) is None:
        services.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError("the sink did not advertise its query endpoint within 120 s")
        time.sleep(0.2)
    return reader


def measure(settings: Settings, reader, *, rate: float, seconds: float, poll_ms: float = 50.0,  # type: ignore[no-untyped-def]
            seed: int = 7) -> dict:
    """Publish at ``rate`` for ``seconds`` (after a warm-up) and time each event until a query returns it."""
    events = source_events(WARMUP_EVENTS + int(rate * seconds), seed)
    warmup = Publishing(settings, (next(events) for _ in range(WARMUP_EVENTS)), rate, 0)
    warmup.start()
    watch(reader, warmup, poll_ms / 1000, drain_s=120)  # the sink has joined its group and writes
    measured = Publishing(settings, events, rate, seconds)
    started = time.monotonic()
    measured.start()
    seen, durations = watch(reader, measured, poll_ms / 1000, drain_s=60)
    if measured.error is not None:
        raise RuntimeError(f"publishing failed: {measured.error}")
    latencies = [seen[e] - at for e, at in measured.published.items() if e in seen]
    return {"rate": rate, "seconds": seconds, "published": len(measured.published), "seen": len(latencies),
            "achieved_rate": round(len(measured.published) / max(time.monotonic() - started, 1e-9), 1),
            "p50_s": round(percentile(latencies, 0.50), 3), "p99_s": round(percentile(latencies, 0.99), 3),
            "max_s": round(max(latencies), 3), "mean_s": round(statistics.fmean(latencies), 3),
            "polls": len(durations), "poll_ms": poll_ms,
            "query_ms_p50": round(1000 * percentile(durations, 0.5), 1),
            "query_ms_max": round(1000 * max(durations), 1)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench.freshness", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=500.0, help="events published per second (default 500)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to publish (default 60)")
    p.add_argument("--partitions", type=int, default=12, help="partitions of every topic (default 12)")
    p.add_argument("--poll-ms", type=float, default=50.0, help="query interval in milliseconds (default 50)")
    p.add_argument("--no-worker", dest="worker", action="store_false", help="run the sink only, not the worker")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def print_result(result: dict, args: argparse.Namespace, info: dict) -> None:
    print(f"freshness at {result['rate']:,.0f} events/s for {result['seconds']:g} s "
          f"({'worker and sink' if args.worker else 'sink only'}, {args.partitions} partitions, "
          f"queried every {args.poll_ms:g} ms through the store owner)")
    print(f"events  published {result['published']:,}  seen {result['seen']:,}  "
          f"(achieved {result['achieved_rate']:,.1f} events/s)")
    print(f"freshness  p50 {result['p50_s']:.3f} s  p99 {result['p99_s']:.3f} s  max {result['max_s']:.3f} s  "
          f"mean {result['mean_s']:.3f} s  (target p99 < {TARGET_P99_S:g} s)")
    print(f"queries  {result['polls']:,}  p50 {result['query_ms_p50']} ms  max {result['query_ms_max']} ms")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items() if k != "versions"))
    if args.json:
        args.json.write_text(json.dumps({"result": result, "machine": info,
                                         "date": datetime.now(timezone.utc).isoformat(timespec="seconds")},
                                        indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ops import broker
    from ops.topics import create_topics

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    home = Path(tempfile.mkdtemp(prefix="onestop-bench-freshness-"))
    port, controller_port = free_ports(2)
    settings = Settings(home=home, kafka_port=port, kafka_controller_port=controller_port,
                        kafka_bootstrap=f"127.0.0.1:{port}", partitions=args.partitions, clock="wall",
                        web_port=0, metrics_port=0, app_id="bench-freshness", clickhouse_dsn="")
    services = BenchServices(settings)
    code = 1
    try:
        broker.start(settings)
        create_topics(settings)
        reader = start_pipeline(settings, services, worker=args.worker)
        result = measure(settings, reader, rate=args.rate, seconds=args.seconds, poll_ms=args.poll_ms,
                         seed=args.seed)
        services.check_alive()
        print_result(result, args, machine_info(settings, "asyncio"))
        code = 0
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}); stopping everything this run started", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        finish(settings, home, code, services)
    return code


if __name__ == "__main__":
    sys.exit(main())
