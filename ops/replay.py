"""Replays: rebuild every derived result from ``dossier.events``, under a fresh application id.

``dossier.events`` is kept forever and is the only source of truth, so the
worker's results (counters, alerts, dead letters) can be recomputed from
offset 0 at any time. A replay runs an ordinary ``onestop worker`` with:

- a fresh application id (``<app_id>-replay-<UTC stamp>``): a new consumer
  group that starts at offset 0, a new changelog, a new local state directory;
- the event clock by default: "overdue" is judged against event time, so the
  same log gives the same counters and alert ids on every run;
- its own output topics (``ioc.metrics.replay-<stamp>``, and the same suffix
  on ``dossier.alerts`` and ``dossier.dlq``), created with the partition count
  of ``dossier.events``; ``--in-place`` publishes to the live topics instead
  (the replay's rows carry newer versions and supersede the live ones).

It waits until the replay's consumer group has committed the whole topic,
stops the worker, reads the results back from Kafka (``streams.readback``)
and prints a summary. ``--compare`` compares them with the live topics and
exits with status 1 on any difference, listing the differing keys.

It imports Kafka and the stream code lazily. The command is ``onestop replay`` (``onestop_cli.replay``).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from rich.console import Console

from onestop.settings import Settings

if TYPE_CHECKING:
    from streams.model import Alert

console = Console()

def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def replay_settings(base: Settings, *, stamp: str | None = None, app_id: str | None = None,
                    suffix: str | None = None, clock: str = "event", in_place: bool = False,
                    partitions: int | None = None) -> Settings:
    """The settings of a replay worker derived from the live ``base`` settings."""
    stamp = stamp or utc_stamp()
    suffix = suffix if suffix is not None else f".replay-{stamp}"
    update: dict = {
        "app_id": app_id or f"{base.app_id}-replay-{stamp}",
        "clock": clock,
        # The replay runs next to the live worker: no web server, no metrics port to collide with.
        "web_port": 0,
        "metrics_port": 0,
        # Its own ticks topic, so the wall-clock ticks of one never reach the other.
        "topic_ticks": f"{base.topic_ticks}{suffix or f'.replay-{stamp}'}",
    }
    if partitions is not None:
        update["partitions"] = partitions
    if not in_place:
        update |= {"topic_metrics": base.topic_metrics + suffix, "topic_alerts": base.topic_alerts + suffix,
                   "topic_dlq": base.topic_dlq + suffix, "topic_state": base.topic_state + suffix}
    return base.model_copy(update=update)


@dataclass
class Comparison:
    counter_diff: dict[tuple, tuple[int, int]]  # key → (replay, live)
    missing_alerts: set[str]  # live alert ids the replay did not send
    extra_alerts: set[str]  # replay alert ids the live worker did not send
    live_lag: int = 0

    @property
    def ok(self) -> bool:
        return not self.counter_diff and not self.missing_alerts and not self.extra_alerts


@dataclass
class ReplayResult:
    settings: Settings
    events: int  # records of dossier.events the replay had to process
    seconds: float  # from worker start until its group had committed them all
    counters: dict[tuple, int]
    alerts: list[Alert]
    dead_letters: int
    comparison: Comparison | None = None
    log: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def alert_ids(self) -> set[str]:
        return {a.alert_id for a in self.alerts}


def run_replay(base: Settings, *, app_id: str | None = None, suffix: str | None = None, clock: str = "event",
               in_place: bool = False, compare: bool = False, timeout: float = 3600.0, keep_state: bool = False,
               out: Console | None = None) -> ReplayResult:
    """Run a replay to completion (see the module docstring); print progress and return what it produced."""
    from ops import topics
    from ops.lag import group_lag
    from ops.services import Services
    from streams.readback import read_alert_records, read_counters

    out = out or console
    if compare and in_place:
        raise ValueError("--compare needs the replay's own topics; it cannot be combined with --in-place")
    counts = topics.list_topics(base)
    if base.topic_events not in counts:
        raise LookupError(f"topic {base.topic_events} does not exist on {base.kafka_bootstrap}")
    partitions = counts[base.topic_events]
    rs = replay_settings(base, app_id=app_id, suffix=suffix, clock=clock, in_place=in_place, partitions=partitions)
    outputs = [rs.topic_metrics, rs.topic_alerts, rs.topic_dlq, rs.topic_state]
    if in_place:  # the live output topics must exist already; their partition count is theirs
        missing = [t for t in outputs if t not in counts]
        if missing:
            raise LookupError(f"--in-place: the live output topics {missing} do not exist")
        topics.create_topics(rs, {rs.topic_ticks: partitions})
    else:
        topics.create_topics(rs, dict.fromkeys([*outputs, rs.topic_ticks], partitions))
        used = {t: n for t in outputs if (n := _records(rs, t))}
        if used:
            raise RuntimeError(f"output topics already hold records {used}; choose another --suffix")
    create_changelog(rs, partitions)
    total = _records(rs, rs.topic_events)
    if group_lag(rs, rs.app_id, [rs.topic_events]) < total:
        raise RuntimeError(f"application id {rs.app_id} has committed offsets already: it would resume, not "
                           "replay; choose a fresh --app-id")
    out.print(f"replaying [bold]{total:,}[/] records of {rs.topic_events} ({partitions} partitions) as "
              f"[bold]{rs.app_id}[/] on the {rs.clock} clock → {', '.join(outputs)}")

    services = Services(rs)
    name = f"replay-{rs.app_id}"
    settle = max(3.0, 2 * rs.publish_interval_s + 1.0)  # let the last counters go out
    started = time.monotonic()
    done_at: float | None = None
    try:
        services.start(name, "worker")
        done_at = _follow(rs, services, total, timeout, settle, started, group_lag, out)
    finally:
        services.stop_all()
    seconds = (done_at or time.monotonic()) - started

    result = ReplayResult(settings=rs, events=total, seconds=seconds, counters=read_counters(rs),
                          alerts=read_alert_records(rs), dead_letters=_records(rs, rs.topic_dlq),
                          log=str(services.logs / f"{name}.log"))
    if not keep_state:
        shutil.rmtree(rs.home / "faust" / rs.app_id, ignore_errors=True)
    if compare:
        result.comparison = compare_runs(base, rs, result)
        if base.clock != rs.clock:
            result.notes.append(f"the live settings use the {base.clock} clock and the replay the {rs.clock} "
                                "clock: SLA buckets and alerts may differ for that reason alone")
    return result


def _follow(rs: Settings, services, total: int, timeout: float, settle: float, started: float,  # type: ignore[no-untyped-def]
            group_lag, out: Console) -> float:
    """Show progress until the group has no lag for ``settle`` seconds; return when it first had none."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    deadline = started + timeout
    quiet_since: float | None = None
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("replay", total=max(total, 1), rate="")
        while True:
            services.check_alive()
            lag = group_lag(rs, rs.app_id, [rs.topic_events])
            now = time.monotonic()
            done = max(0, total - lag)
            rate = done / (now - started) if now > started else 0.0
            progress.update(task, completed=min(done, total), rate=f"{rate:,.0f} events/s")
            if lag == 0:
                quiet_since = quiet_since or now
                if now - quiet_since >= settle:
                    return quiet_since
            else:
                quiet_since = None
            if now > deadline:
                raise TimeoutError(f"replay still {lag:,} records behind after {timeout:.0f}s")
            time.sleep(0.5)


def compare_runs(live: Settings, rs: Settings, result: ReplayResult | None = None) -> Comparison:
    """Compare the replay's counters and alert ids with those on the live topics."""
    from ops.lag import group_lag
    from streams.readback import diff_counters, read_alerts, read_counters

    replay_counters = result.counters if result else read_counters(rs)
    replay_ids = result.alert_ids if result else read_alerts(rs)[0]
    live_ids, _ = read_alerts(live)
    return Comparison(
        counter_diff=diff_counters(replay_counters, read_counters(live)),
        missing_alerts=live_ids - replay_ids,
        extra_alerts=replay_ids - live_ids,
        live_lag=group_lag(live, live.app_id, [live.topic_events]),
    )


def create_changelog(settings: Settings, partitions: int) -> None:
    """Create the worker's state changelog (compacted) before a new application id first starts.

    Faust would create it, but a worker that joins its group before the new topic reaches its
    metadata gets none of its partitions and then fails on every record (PartitionsMismatch).
    """
    from kafka import KafkaAdminClient

    from streams.app import changelog_topic

    name = changelog_topic(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="onestop-replay")
    try:
        existing = {t["name"]: len(t.get("partitions") or []) for t in admin.describe_topics()
                    if t.get("error_code", 0) == 0}
        if name in existing:
            if existing[name] != partitions:
                raise RuntimeError(f"{name} has {existing[name]} partitions, expected {partitions}")
            return
        response = admin.create_topics({name: {"num_partitions": partitions,
                                               "replication_factor": settings.replication_factor,
                                               "configs": {"cleanup.policy": "compact"}}}, raise_errors=False)
        errors = [t for t in response.get("topics", []) if t.get("error_code") not in (0, 36)]  # 36: exists
        if errors:
            raise RuntimeError(f"creating {name} failed: {errors}")
        admin.wait_for_topics([name], timeout_ms=30_000)
    finally:
        admin.close()


def _records(settings: Settings, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="onestop-replay",
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return 0
        ends, starts = consumer.end_offsets(tps), consumer.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        consumer.close()
