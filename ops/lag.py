"""Consumer-group lag: how far a group is behind the end of its topics."""

from __future__ import annotations

import time
from typing import Callable, Iterable

from onestop.settings import Settings


def group_lag(settings: Settings, group: str, topics: Iterable[str]) -> int:
    """Records the group has not committed yet, over every partition of ``topics``."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    servers = settings.kafka_bootstrap.split(",")
    admin = KafkaAdminClient(bootstrap_servers=servers, client_id="onestop-lag")
    consumer = KafkaConsumer(bootstrap_servers=servers, client_id="onestop-lag", enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(tps)
        try:
            committed = admin.list_group_offsets({group: tps}).get(group, {})
        except KafkaError:  # no coordinator yet: the group has not committed anything
            committed = {}
        lag = 0
        for tp in tps:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(0, ends[tp] - done)
        return lag
    finally:
        consumer.close()
        admin.close()


def wait_caught_up(
    settings: Settings,
    groups: dict[str, list[str]],
    *,
    timeout: float = 300.0,
    settle: float = 3.0,
    on_poll: Callable[[dict[str, int]], None] | None = None,
) -> dict[str, int]:
    """Block until every group has zero lag, steadily for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while True:
        lags = {g: group_lag(settings, g, topics) for g, topics in groups.items()}
        if on_poll:
            on_poll(lags)
        now = time.monotonic()
        if all(v == 0 for v in lags.values()):
            quiet_since = quiet_since or now
            if now - quiet_since >= settle:
                return lags
        else:
            quiet_since = None
        if now > deadline:
            raise TimeoutError(f"pipeline still behind after {timeout:.0f}s: {lags}")
        time.sleep(0.5)


def pipeline_groups(settings: Settings) -> dict[str, list[str]]:
    """The consumer groups of the pipeline and the topics each must finish."""
    return {
        settings.app_id: [settings.topic_events],
        settings.sink_group: [settings.topic_events, settings.topic_metrics, settings.topic_alerts,
                              settings.topic_dlq],
    }
