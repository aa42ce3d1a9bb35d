"""Shared helpers of the worker-level integration tests (crash recovery, replay, scale-out).

Each test gets its own topic namespace on the session broker, so the runs it
compares read exactly the same input, and nothing another test publishes
leaks in. Workers are real ``onestop worker`` subprocesses started through
``ops.services.Services`` and stopped by pid.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from onestop import dlq
from ops import broker
from ops.topics import create_topics
from ops.services import Services
from ops.lag import group_lag, wait_caught_up
from ops.replay import create_changelog
from onestop.settings import Settings
from producers.publisher import Publisher
from producers.sim_expect import expected_backlog  # noqa: F401  (the tests' independent count)
from streams.model import Alert
from streams.readback import consume_topic, read_alert_records, read_counters

# The settle time after the group caught up must cover at least two counter publications (1 s timer).
SETTLE_S = 3.0


def namespace(base: Settings, name: str, home: Path) -> Settings:
    """Settings for one test: its own input topic (and ticks), event clock, no web server."""
    settings = base.model_copy(update={
        "home": home, "web_port": 0, "metrics_port": 0, "clock": "event",
        "topic_events": f"it.{name}.events", "topic_ticks": f"it.{name}.ticks",
        "topic_state": f"it.{name}.state", "sink_group": f"it-{name}-sink",
    })
    create_topics(settings, {settings.topic_events: settings.partitions, settings.topic_ticks: settings.partitions,
                             settings.topic_state: settings.partitions})  # the worker publishes dossier states
    return settings


def run_settings(settings: Settings, run: str, home: Path, **extra: object) -> Settings:
    """One run over the namespace's input: its own app id, home and output topics (created here)."""
    out = settings.model_copy(update={
        "app_id": f"{settings.topic_events.removesuffix('.events').replace('.', '-')}-{run}", "home": home,
        "topic_metrics": f"{settings.topic_events.removesuffix('.events')}.{run}.metrics",
        "topic_alerts": f"{settings.topic_events.removesuffix('.events')}.{run}.alerts",
        "topic_dlq": f"{settings.topic_events.removesuffix('.events')}.{run}.dlq",
        "topic_state": f"{settings.topic_events.removesuffix('.events')}.{run}.state",
        **extra,
    })
    create_topics(out, dict.fromkeys((out.topic_metrics, out.topic_alerts, out.topic_dlq, out.topic_state),
                                     out.partitions))
    create_changelog(out, out.partitions)  # Faust races its own creation of it when workers start together
    return out


def publish(settings: Settings, evs: Iterable) -> int:
    with Publisher(settings, client_id="it-stream-runs") as pub:
        n = pub.publish_many(evs)
        pub.flush(timeout=120)
    return n


def end_offsets(settings: Settings, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="it-ends",
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def wait_worker(settings: Settings, services: Services, timeout: float) -> None:
    """Until the worker's group has committed everything on the input topic, steadily."""
    wait_caught_up(settings, {settings.app_id: [settings.topic_events]}, timeout=timeout, settle=SETTLE_S,
                   on_poll=lambda _: services.check_alive())


def committed_progress(settings: Settings) -> int:
    """Records of the input topic the worker group has committed."""
    return end_offsets(settings, settings.topic_events) - group_lag(settings, settings.app_id,
                                                                    [settings.topic_events])


def run_worker_to_end(settings: Settings, timeout: float = 240.0, name: str = "worker") -> float:
    """One uninterrupted worker over the whole input; returns its wall time in seconds."""
    services = Services(settings)
    started = time.monotonic()
    try:
        services.start(name, "worker")
        wait_worker(settings, services, timeout)
    finally:
        services.stop_all()
    return time.monotonic() - started


@dataclass
class Outcome:
    counters: dict[tuple, int]
    alerts: list[Alert]
    dead_letters: set[tuple] = field(default_factory=set)  # (reason_code, dossier_id, event_id); redeliveries fold

    @property
    def alert_ids(self) -> set[str]:
        return {a.alert_id for a in self.alerts}

    def backlog_per_commune(self) -> dict[str, int]:
        out: Counter = Counter()
        for key, n in self.counters.items():
            if key[0] == "backlog":
                out[key[1]] += n
        return {k: v for k, v in out.items() if v}


def read_outcome(settings: Settings) -> Outcome:
    dead = {(d.reason_code, d.dossier_id, d.event_id)
            for d in (dlq.decode(raw) for _, _, raw in consume_topic(settings, settings.topic_dlq) if raw)}
    return Outcome(read_counters(settings), read_alert_records(settings), dead)


def assert_same_outcome(got: Outcome, want: Outcome, what: str) -> None:
    from streams.readback import diff_counters

    extra_dead, missing_dead = got.dead_letters - want.dead_letters, want.dead_letters - got.dead_letters
    diff = diff_counters(got.counters, want.counters)
    assert not diff, (f"{what}: {len(diff)} counter keys differ (got, want), first: {list(diff.items())[:10]}; "
                      f"dead letters only in got: {sorted(extra_dead)[:5]}, only in want: {sorted(missing_dead)[:5]}")
    assert not extra_dead and not missing_dead, (
        f"{what}: dead letters differ: only in got {sorted(extra_dead)[:5]}, only in want {sorted(missing_dead)[:5]}")
    missing, extra = want.alert_ids - got.alert_ids, got.alert_ids - want.alert_ids
    assert not missing and not extra, (f"{what}: alert ids differ: {len(missing)} missing, {len(extra)} extra; "
                                       f"e.g. missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}")


def alert_content(alert: Alert) -> tuple:
    """Everything an alert says except when it was decided (a redelivery may decide it later)."""
    return (alert.kind, alert.dossier_id, alert.commune_code, alert.receiving_commune_code, alert.procedure_code,
            alert.field, alert.due_at, alert.original_due_at, alert.clock, alert.clears)


def grep_log(settings: Settings, name: str, needle: str) -> list[str]:
    path = settings.home / "logs" / f"{name}.log"
    if not path.is_file():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if needle in line]


def group_partitions(settings: Settings) -> list[set[int]]:
    """Partitions of the input topic assigned to each member of the worker's consumer group right now."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="it-describe")
    try:
        group = admin.describe_groups([settings.app_id])[settings.app_id]
    finally:
        admin.close()
    out = []
    for member in group["members"]:
        assignment = member["member_assignment"] or {}
        out.append({p for tp in assignment.get("assigned_partitions", []) if tp["topic"] == settings.topic_events
                    for p in tp["partitions"]})
    return out
