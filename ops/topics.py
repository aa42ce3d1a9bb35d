"""The pipeline's Kafka topics: names, partition counts and per-topic configuration, created explicitly."""

from __future__ import annotations

from typing import Any

from onestop.settings import Settings
from ops.admin import BrokerError, admin


def pipeline_topics(settings: Settings) -> dict[str, int]:
    """The topics of the pipeline, each with ``settings.partitions`` partitions."""
    names = (settings.topic_events, settings.topic_dlq, settings.topic_state,
             settings.topic_metrics, settings.topic_alerts, settings.topic_ticks)
    return dict.fromkeys(names, settings.partitions)


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Per-topic configuration.

    dossier.events is the source of truth and is kept forever (every derived table is rebuilt
    from it); the state topic keeps the latest value per key; ticks are worthless after an hour.
    dossier.alerts is compacted by dossier (its latest decision is the alert router's snapshot) and
    keeps every record for a week first (docs/alerting.md).
    """
    return {
        settings.topic_events: {"retention.ms": "-1", "retention.bytes": "-1"},
        settings.topic_dlq: {"retention.ms": "-1"},
        settings.topic_state: {"cleanup.policy": "compact"},
        settings.topic_alerts: {"cleanup.policy": "compact", "min.compaction.lag.ms": str(7 * 24 * 3600 * 1000)},
        settings.topic_ticks: {"retention.ms": "3600000"},
    }


def list_topics(settings: Settings) -> dict[str, int]:
    """Partition count of every non-internal topic on the local broker."""
    with admin(settings.kafka_port) as client:
        return _partition_counts(client, None)


def _partition_counts(admin: Any, names: list[str] | None) -> dict[str, int]:
    counts = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) == 0 and not topic.get("is_internal"):
            counts[topic["name"]] = len(topic.get("partitions") or [])
    return counts


def create_topics(settings: Settings, topics: dict[str, int] | None = None) -> dict[str, int]:
    """Create the pipeline topics (or ``topics``: name → partitions) if missing; return their counts.

    Existing topics are fine as long as their partition count matches; a mismatch is an error,
    because keyed events would land on other partitions than the consumers' state expects.
    """
    wanted = pipeline_topics(settings) if topics is None else dict(topics)
    configs = topic_configs(settings)
    with admin(settings.kafka_port) as client:
        existing = _partition_counts(client, None)
        _check_partitions(wanted, existing)
        missing = {name: n for name, n in wanted.items() if name not in existing}
        if missing:
            request = {name: {"num_partitions": n, "replication_factor": settings.replication_factor,
                              "configs": configs.get(name, {})} for name, n in missing.items()}
            _raise_create_errors(client.create_topics(request, raise_errors=False))
            client.wait_for_topics(list(missing), timeout_ms=30_000)
        counts = _partition_counts(client, list(wanted))
    _check_partitions(wanted, counts)
    return counts


def _check_partitions(wanted: dict[str, int], existing: dict[str, int]) -> None:
    wrong = {name: (existing[name], n) for name, n in wanted.items() if name in existing and existing[name] != n}
    if wrong:
        lines = ", ".join(f"{name} has {have} partitions, expected {want}" for name, (have, want) in wrong.items())
        raise BrokerError(f"topic partition count mismatch: {lines}. Delete the topics (or the broker's "
                          "data directory) or set ONESTOP_PARTITIONS to match.")


def _raise_create_errors(response: dict[str, Any]) -> None:
    topic_exists = 36  # TOPIC_ALREADY_EXISTS: a concurrent creator won the race, which is fine
    errors = [f"{t['name']}: {t.get('error_message') or t['error_code']}"
              for t in response.get("topics", []) if t.get("error_code") not in (0, topic_exists)]
    if errors:
        raise BrokerError("creating topics failed: " + "; ".join(errors))
