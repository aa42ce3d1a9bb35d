"""``onestop replay``: rebuild every derived result from ``dossier.events``, under a fresh application id.

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

Like every command here it imports Kafka and the stream code lazily.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from onestop.settings import Settings, get_settings

if TYPE_CHECKING:
    from streams.model import Alert

console = Console()

HELP = "\n\n".join((
    "Reprocess dossier.events from offset 0 under a fresh application id and print what it yields.",
    "The replay runs an ordinary worker (a subprocess; its log is in ONESTOP_HOME/logs) with a new consumer "
    "group and changelog, on the event clock unless --clock wall. It publishes to its own output topics, the "
    "live ioc.metrics, dossier.alerts and dossier.dlq names plus the suffix .replay-<UTC stamp>, created with "
    "the partition count of dossier.events (--in-place publishes to the live topics instead). It waits until "
    "the replay's group has committed the whole topic, stops the worker and prints events/s, counters and "
    "alerts.",
    "--compare then compares the replay's counters and alert-id set with the live topics and exits with "
    "status 1 on any difference, printing the differing keys. The comparison is exact only when the live "
    "worker has caught up on the same events and judges with the same clock: simulations, backfills and "
    "replays use the event clock; a live wall-clock worker's SLA buckets and alerts legitimately differ.",
    "Exit status: 0 done (and equal, with --compare), 1 differences, 2 the replay could not run. The "
    "replay's topics and consumer group stay on the broker; its local RocksDB state is removed unless "
    "--keep-state.",
))


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
                   "topic_dlq": base.topic_dlq + suffix}
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
    from onestop.cli import broker
    from onestop.cli.demo import Services
    from onestop.cli.lag import group_lag
    from streams.readback import read_alert_records, read_counters

    out = out or console
    if compare and in_place:
        raise ValueError("--compare needs the replay's own topics; it cannot be combined with --in-place")
    counts = broker.list_topics(base)
    if base.topic_events not in counts:
        raise LookupError(f"topic {base.topic_events} does not exist on {base.kafka_bootstrap}")
    partitions = counts[base.topic_events]
    rs = replay_settings(base, app_id=app_id, suffix=suffix, clock=clock, in_place=in_place, partitions=partitions)
    outputs = [rs.topic_metrics, rs.topic_alerts, rs.topic_dlq]
    if in_place:  # the live output topics must exist already; their partition count is theirs
        missing = [t for t in outputs if t not in counts]
        if missing:
            raise LookupError(f"--in-place: the live output topics {missing} do not exist")
        broker.create_topics(rs, {rs.topic_ticks: partitions})
    else:
        broker.create_topics(rs, dict.fromkeys([*outputs, rs.topic_ticks], partitions))
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
    from onestop.cli.lag import group_lag
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


def print_summary(result: ReplayResult, out: Console | None = None) -> None:
    from collections import Counter

    out = out or console
    rs = result.settings
    backlog: Counter = Counter()
    flows: Counter = Counter()
    ontime: Counter = Counter()
    for key, n in result.counters.items():
        if key[0] == "backlog":
            backlog[key[5]] += n  # by SLA bucket
        elif key[0] == "throughput" and key[1] == "d":
            flows[key[6]] += n  # received / resolved / returned
        elif key[0] == "ontime" and key[1] == "mo":
            ontime[key[6]] += n  # before_due / on_due / overdue
    kinds = Counter(a.kind for a in result.alerts)
    ids = result.alert_ids

    table = Table("", "", title=f"Replay {rs.app_id}", show_header=False)
    table.add_row("events", f"{result.events:,} in {result.seconds:,.1f}s = {result.rate:,.0f} events/s "
                            "(worker start-up included)")
    table.add_row("clock", rs.clock)
    table.add_row("open dossiers", f"{sum(backlog.values()):,} (" +
                  ", ".join(f"{k} {v:,}" for k, v in sorted(backlog.items())) + ")")
    table.add_row("throughput", ", ".join(f"{k} {v:,}" for k, v in sorted(flows.items())) or "-")
    table.add_row("on time (resolved)", ", ".join(f"{k} {v:,}" for k, v in sorted(ontime.items())) or "-")
    table.add_row("counter keys", f"{len(result.counters):,}")
    table.add_row("alerts", f"{len(ids):,} distinct ids in {len(result.alerts):,} records (" +
                  ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())) + ")")
    table.add_row("dead letters", f"{result.dead_letters:,}")
    table.add_row("topics", f"{rs.topic_metrics}, {rs.topic_alerts}, {rs.topic_dlq}")
    table.add_row("worker log", result.log)
    out.print(table)
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")


def print_comparison(cmp: Comparison, live: Settings, max_rows: int = 50, out: Console | None = None) -> None:
    out = out or console
    if cmp.live_lag:
        out.print(f"[yellow]warning:[/] the live worker group {live.app_id} is still {cmp.live_lag:,} records "
                  "behind; its results are not final")
    if cmp.ok:
        out.print(f"[green]✓ same counters and alert ids as the live topics "
                  f"({live.topic_metrics}, {live.topic_alerts})[/green]")
        return
    out.print(f"[red]✗ differs from the live topics: {len(cmp.counter_diff):,} counter keys, "
              f"{len(cmp.missing_alerts):,} live alert ids missing from the replay, "
              f"{len(cmp.extra_alerts):,} replay alert ids not on the live topic[/red]")
    if cmp.counter_diff:
        table = Table("counter key", "replay", "live", title="Differing counters")
        for key, (mine, theirs) in list(cmp.counter_diff.items())[:max_rows]:
            table.add_row(" · ".join(str(k) for k in key), f"{mine:,}", f"{theirs:,}")
        out.print(table)
        if len(cmp.counter_diff) > max_rows:
            out.print(f"… and {len(cmp.counter_diff) - max_rows:,} more")
    for label, ids in (("missing from the replay", cmp.missing_alerts), ("only in the replay", cmp.extra_alerts)):
        if ids:
            shown = sorted(ids)[:max_rows]
            out.print(f"alert ids {label}: " + ", ".join(shown) + (" …" if len(ids) > max_rows else ""))


def replay(
    app_id: Optional[str] = typer.Option(
        None, "--app-id", help="Application id (consumer group, changelog) of the replay "
        "(default: <ONESTOP_APP_ID>-replay-<UTC stamp>). Must be new: an existing group resumes, not replays."),
    suffix: Optional[str] = typer.Option(
        None, "--suffix", help="Suffix of the replay's output topics (default: .replay-<UTC stamp>)."),
    in_place: bool = typer.Option(
        False, "--in-place", help="Publish to the live ioc.metrics, dossier.alerts and dossier.dlq instead of "
        "suffixed copies (to rebuild what the sinks read; the replay's rows supersede older ones by version)."),
    clock: str = typer.Option(
        "event", "--clock", help="What 'overdue' is judged against: event (deterministic, the default) or wall."),
    compare: bool = typer.Option(
        False, "--compare", help="Compare counters and alert ids with the live topics; exit 1 on any difference."),
    timeout: float = typer.Option(3600.0, help="Seconds to wait for the replay to catch up."),
    keep_state: bool = typer.Option(False, "--keep-state", help="Keep the replay's local RocksDB state afterwards."),
    max_diff: int = typer.Option(50, "--max-diff", help="Differing keys to print at most."),
) -> None:
    if clock not in ("event", "wall"):
        raise typer.BadParameter("must be 'event' or 'wall'", param_hint="--clock")
    if compare and in_place:
        raise typer.BadParameter("--compare needs the replay's own output topics", param_hint="--in-place")
    import logging

    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.ERROR)  # kafka-python narrates every connection
    base = get_settings()
    try:
        result = run_replay(base, app_id=app_id, suffix=suffix, clock=clock, in_place=in_place, compare=compare,
                            timeout=timeout, keep_state=keep_state)
    except (LookupError, RuntimeError, TimeoutError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    print_summary(result)
    if result.comparison is not None:
        print_comparison(result.comparison, base, max_diff)
        if not result.comparison.ok:
            raise typer.Exit(1)


replay.__doc__ = HELP


def register(app: typer.Typer) -> None:
    app.command(name="replay", help=HELP)(replay)
