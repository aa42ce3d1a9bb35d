"""Alert latency benchmark: from a dossier's due moment to the notification at the webhook, on the wall clock.

    python -m tests.bench.alert_latency [--dossiers 200] [--spread 60] [--lead 75] [--group-wait 1s]
                                        [--partitions 12] [--json out.json]

What it does (docs/benchmarks.md has the method and the figures):

1. starts its own Kafka broker, the real Alertmanager (Debian package) with the deployment's
   routing tree (deploy/alertmanager, receivers pointed at a webhook in this process), the
   worker on the wall clock (``clock=wall``, ``sla_boundary=instant``: a dossier turns overdue at
   its due instant, not at the next midnight) and the alert router, all on loopback;
2. publishes ``--dossiers`` accepted dossiers whose receipts are due ``--lead`` seconds from
   now, spread over ``--spread`` seconds, in communes of Hà Tĩnh;
3. waits for the overdue notification of each dossier at the webhook, and prints, per dossier,
   the time from its due moment to the notification's arrival minus Alertmanager's configured
   ``group_wait`` (the wait Alertmanager adds on purpose, to group): p50, p90, p99 and max; and
   the two halves: due moment → alert record on ``dossier.alerts`` (the worker), and that record
   → webhook minus ``group_wait`` (router, Alertmanager, webhook);
4. stops everything it started, also on Ctrl-C or SIGTERM.

The bench groups Alertmanager's notifications by dossier, so that each waits exactly
``group_wait``; grouped by commune (the deployment), a dossier joining a group that already
notified waits for the next ``group_interval`` instead. No assertion is made on the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from onestop import events
from ops import broker
from ops.topics import create_topics
from ops.services import Services
from ops.lag import wait_caught_up
from onestop.communes import communes_of
from onestop.settings import Settings
from producers.publisher import Publisher
from streams.model import decode_alert
from tests.bench.run import machine_info
from tests.integration.conftest import free_ports
from tests.monitoring import Alertmanager, Webhook, cleared, local_config, overdue, publish_alerts

TARGET_P99_S = 5.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=200, help="dossiers that fall due (default 200)")
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which they fall due (default 60)")
    parser.add_argument("--lead", type=float, default=75.0,
                        help="seconds from publishing to the first due moment; at least 61 (default 75)")
    parser.add_argument("--group-wait", default="1s", help="Alertmanager's group_wait (default 1s)")
    parser.add_argument("--partitions", type=int, default=12, help="partitions of every topic (default 12)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait after the last due moment")
    parser.add_argument("--rebuild-dossiers", type=int, default=0,
                        help="then also time the router's rebuild after a restart, with this many more dossiers "
                             "alerted on dossier.alerts, 1%% of them still active (default 0: skip)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.lead < 61:
        parser.error("--lead must be at least 61 s: the worker looks at a deadline no sooner than a minute ahead")
    return args


def seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(f"duration {text!r}: use ms, s or m")


def bench_config(webhook: Webhook, group_wait: str) -> dict:
    config = local_config(webhook, group_wait=group_wait, group_interval="1s", telegram=False)
    dossier_route = config["route"]["routes"][0]
    assert "DossierOverdue" in dossier_route["matchers"][0]
    dossier_route["group_by"] = ["dossier_id", "alertname", "escalation"]
    return config


def dossiers(count: int, first_due: datetime, spread: float, province: str) -> list[events.DossierEvent]:
    communes = [c.code for c in communes_of(province)]
    now = datetime.now(timezone.utc)
    out = []
    for i in range(count):
        due = first_due + timedelta(seconds=spread * i / max(1, count - 1))
        code = communes[i % len(communes)]
        out.append(events.DossierEvent(
            event_id=str(uuid.uuid4()), event_type=events.EventType.ACCEPTED, dossier_id=f"BENCH-{code}-{i:05d}",
            seq=1, occurred_at=now, commune_code=code, procedure_code="1.001193", channel=events.Channel.ONLINE,
            due_at=due, source="bench"))
    return out


def alert_records(settings: Settings) -> dict[str, float]:
    """Kafka timestamp (Unix seconds) of each dossier's overdue alert record."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), enable_auto_commit=False)
    try:
        tps = [TopicPartition(settings.topic_alerts, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        stamps: dict[str, float] = {}
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for msgs in consumer.poll(timeout_ms=1000).values():
                for msg in msgs:
                    alert = decode_alert(msg.value)
                    if alert.kind == "overdue":
                        stamps.setdefault(alert.dossier_id, msg.timestamp / 1000)
        return stamps
    finally:
        consumer.close()


def arrivals(webhook: Webhook) -> dict[str, float]:
    """When the first overdue notification of each dossier reached the webhook."""
    first: dict[str, float] = {}
    for note in webhook.snapshot():
        for alert in note.alerts:
            if alert["status"] == "firing" and alert["labels"].get("alertname") == "DossierOverdue":
                first.setdefault(alert["labels"]["dossier_id"], note.arrived)
    return first


def summary(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"n": len(values), "p50": values[0] if values else float("nan"), "p90": float("nan"),
                "p99": float("nan"), "max": max(values, default=float("nan"))}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"n": len(values), "p50": q[49], "p90": q[89], "p99": q[98], "max": max(values)}


def print_table(rows: dict[str, dict[str, float]]) -> None:
    print(f"{'seconds':<42} {'n':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for name, s in rows.items():
        print(f"{name:<42} {s['n']:>5} {s['p50']:>7.3f} {s['p90']:>7.3f} {s['p99']:>7.3f} {s['max']:>7.3f}")


def measure(args: argparse.Namespace, home: Path, cleanup: list) -> dict:
    port, controller = free_ports(2)
    run = uuid.uuid4().hex[:8]
    settings = Settings(home=home, kafka_port=port, kafka_controller_port=controller,
                        kafka_bootstrap=f"127.0.0.1:{port}", partitions=args.partitions, clock="wall",
                        sla_boundary="instant", web_port=0, metrics_port=0, app_id=f"bench-alerts-{run}",
                        router_group=f"bench-router-{run}")
    broker.start(settings)
    cleanup.append(lambda: broker.stop(settings))
    create_topics(settings)
    webhook = Webhook()
    cleanup.append(webhook.close)
    am = Alertmanager(home / "alertmanager", bench_config(webhook, args.group_wait)).start()
    cleanup.append(am.stop)
    settings = settings.model_copy(update={"alertmanager_url": am.url})
    services = Services(settings)
    cleanup.append(services.stop_all)
    services.start("worker", "worker")
    services.start("router", "alerts", "run")
    first_due = datetime.now(timezone.utc) + timedelta(seconds=args.lead)
    batch = dossiers(args.dossiers, first_due, args.spread, settings.province_code)
    with Publisher(settings) as pub:
        pub.publish_many(batch)
    wait_caught_up(settings, {settings.app_id: [settings.topic_events]}, timeout=args.lead, settle=0.5,
                   on_poll=lambda _: services.check_alive())
    ahead = (first_due - datetime.now(timezone.utc)).total_seconds()
    print(f"{len(batch)} dossiers accepted; the worker holds them {ahead:.0f}s before the first falls due", flush=True)
    services.check_alive()
    if ahead <= 0:
        raise RuntimeError("the worker caught up after the first due moment: raise --lead")
    last_due = max(e.due_at for e in batch)
    deadline = time.monotonic() + (last_due - datetime.now(timezone.utc)).total_seconds() + args.timeout
    while len(arrivals(webhook)) < len(batch) and time.monotonic() < deadline:
        services.check_alive()
        time.sleep(0.2)
    got, records = arrivals(webhook), alert_records(settings)
    group_wait = seconds(args.group_wait)
    due = {e.dossier_id: e.due_at.timestamp() for e in batch}
    total = [got[d] - due[d] - group_wait for d in due if d in got]
    worker = [records[d] - due[d] for d in due if d in records]
    rest = [got[d] - records[d] - group_wait for d in due if d in got and d in records]
    rebuild = time_rebuild(settings, services, args.rebuild_dossiers) if args.rebuild_dossiers else None
    return {"settings": settings, "rebuild": rebuild, "rows": {
        "due → webhook, minus group_wait": summary(total),
        "  due → alert on dossier.alerts (worker)": summary(worker),
        "  alert → webhook, minus group_wait": summary(rest),
    }, "missing": sorted(set(due) - set(got))}


def time_rebuild(settings: Settings, services: Services, count: int) -> dict:
    """Stop the router, add ``count`` alerted dossiers (99% of them cleared again), start it, read its rebuild log."""
    services.stop("router")
    now = datetime.now(timezone.utc)
    records = []
    for i in range(count):
        alert = overdue(f"REBUILD-{i:07d}", "18754")
        records.append(alert)
        if i % 100:
            records.append(cleared(alert))
    publish_alerts(settings, records)
    log = settings.home / "logs" / "router.log"
    start = log.stat().st_size if log.exists() else 0
    services.start("router", "alerts", "run")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        services.check_alive()
        text = log.read_text(errors="replace")[start:] if log.exists() else ""
        found = re.search(r"rebuilt (\d+) active alerts from (\d+) records .*read in ([\d.]+)s, (\d+) alerts posted "
                          r"in ([\d.]+)s", text)
        if found:
            active, read, fold_s, posted, post_s = found.groups()
            print(f"rebuild: {int(read):,} records read and folded in {float(fold_s):.2f}s "
                  f"({int(read) / max(float(fold_s), 1e-6):,.0f}/s), {int(active):,} active, {int(posted):,} alerts "
                  f"posted in {float(post_s):.2f}s (published at {now:%H:%M:%S})", flush=True)
            return {"records": int(read), "active": int(active), "fold_s": float(fold_s), "posted": int(posted),
                    "post_s": float(post_s)}
        time.sleep(0.5)
    raise RuntimeError("the router did not log its rebuild")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    home = Path(tempfile.mkdtemp(prefix="onestop-alert-bench-"))
    cleanup: list = []
    code = 1
    try:
        started = datetime.now(timezone.utc)
        info = machine_info(Settings(), "asyncio")
        print(f"onestop-ioc alert latency benchmark, {started:%Y-%m-%d %H:%M} UTC")
        print(f"machine: {info['nproc']} CPUs ({info['cpu_model']}), {info['mem_gib']} GiB, Python {info['python']}, "
              f"Kafka {info['kafka']}, load {info['loadavg_at_start']}")
        print(f"{args.dossiers} dossiers due over {args.spread:g}s, group_wait {args.group_wait}, "
              f"{args.partitions} partitions", flush=True)
        result = measure(args, home, cleanup)
        print_table(result["rows"])
        p99 = result["rows"]["due → webhook, minus group_wait"]["p99"]
        print(f"target: p99 < {TARGET_P99_S:g}s; measured p99 {p99:.3f}s"
              + (f"; {len(result['missing'])} dossiers not notified" if result["missing"] else ""))
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "date": started.isoformat(timespec="seconds"), "machine": info,
                "config": {"dossiers": args.dossiers, "spread_s": args.spread, "lead_s": args.lead,
                           "group_wait": args.group_wait, "partitions": args.partitions,
                           "tick_interval_s": result["settings"].tick_interval_s},
                "results": result["rows"], "rebuild": result["rebuild"], "missing": result["missing"],
                "target_p99_s": TARGET_P99_S,
            }, indent=2, ensure_ascii=False) + "\n")
            print(f"figures written to {args.json}")
        code = 0 if not result["missing"] else 1
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}); stopping everything this run started", file=sys.stderr)
        code = 130
    except Exception as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}; logs in {home}", file=sys.stderr)
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:  # keep cleaning up
                print(f"clean-up step failed: {exc}", file=sys.stderr)
        if code != 1:
            shutil.rmtree(home, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
