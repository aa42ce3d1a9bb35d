"""The tail of the dead-letter topic, read without a consumer group (nothing is committed).

On each partition it seeks to ``end - N`` (``end - scan`` when filtering by reason), reads up
to the end, merges the partitions by ``rejected_at`` and keeps the newest N, oldest first
like a log tail. The record format and the reason codes are in docs/dlq.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from onestop import dlq
from onestop.settings import Settings


class DlqReadError(RuntimeError):
    """The dead-letter topic could not be read (no broker, no topic, time-out)."""


@dataclass(frozen=True)
class Found:
    """One record of the dead-letter topic; ``record`` is None if it is not a valid DeadLetter."""

    partition: int
    offset: int
    timestamp: datetime  # rejected_at, else the Kafka record's timestamp
    record: dlq.DeadLetter | None
    raw: bytes
    problem: str | None = None


def _found(partition: int, offset: int, kafka_ms: int, raw: bytes) -> Found:
    try:
        record = dlq.decode(raw)
    except Exception as exc:  # msgspec errors: a producer wrote something else to the topic
        stamp = datetime.fromtimestamp(kafka_ms / 1000, timezone.utc)
        return Found(partition, offset, stamp, None, raw, f"not a DeadLetter record: {exc}")
    stamp = record.rejected_at if record.rejected_at.tzinfo else record.rejected_at.replace(tzinfo=timezone.utc)
    return Found(partition, offset, stamp, record, raw)


def recent_dead_letters(settings: Settings, limit: int, *, reason: str | None = None, scan: int = 10_000,
                        timeout: float = 20.0) -> list[Found]:
    """The newest ``limit`` records of the DLQ (of one reason code, if given), oldest first."""
    from kafka import KafkaConsumer, TopicPartition

    window = limit if reason is None else max(limit, scan)
    try:
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=None,
                                 enable_auto_commit=False, client_id="onestop-dlq-show",
                                 bootstrap_timeout_ms=int(timeout * 500), request_timeout_ms=int(timeout * 1000))
    except Exception as exc:
        raise DlqReadError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(settings.topic_dlq)
        if not partitions:
            raise DlqReadError(f"topic {settings.topic_dlq} does not exist on {settings.kafka_bootstrap}")
        tps = [TopicPartition(settings.topic_dlq, p) for p in sorted(partitions)]
        found = _read_tail(consumer, tps, window, timeout)
    finally:
        consumer.close()
    if reason is not None:
        found = [f for f in found if f.record is not None and f.record.reason_code == reason]
    found.sort(key=lambda f: (f.timestamp, f.partition, f.offset))
    return found[-limit:] if limit > 0 else []


def _read_tail(consumer: Any, tps: list, window: int, timeout: float) -> list[Found]:
    begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, max(begin[tp], end[tp] - window))
    found: list[Found] = []
    deadline = time.monotonic() + timeout
    while any(consumer.position(tp) < end[tp] for tp in tps):
        if time.monotonic() > deadline:
            raise DlqReadError(f"could not read {tps[0].topic} within {timeout:g}s")
        for tp, records in consumer.poll(timeout_ms=500).items():
            found.extend(_found(tp.partition, r.offset, r.timestamp, r.value) for r in records
                         if r.offset < end[tp])
    return found
