"""Read the worker's final aggregates back from Kafka, without ClickHouse.

``ioc.metrics`` carries ``CounterBatch`` messages: absolute counts per
(family, key, source partition) with a version that only grows. The current
value of a key is, for every source partition, the row with the highest
version, added up over the partitions; a row older than its partition's
latest ``epoch`` (the last rebuild, which re-sent every live key) counts as
zero. ``dossier.alerts`` carries alerts with
stable ids: the same id delivered twice is one alert.

This is what the tests and ``onestop replay --compare`` use to compare two
runs (an uninterrupted one, one with crashes, a replay, a scaled-out one). It
reads whole topics from the beginning with kafka-python, by manual assignment
and without a consumer group, so it leaves nothing behind on the broker.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator

import msgspec

from onestop.settings import Settings
from streams.counters import CounterBatch
from streams.model import Alert, decode_alert

Key = tuple

_batch = msgspec.json.Decoder(CounterBatch)


def consume_topic(settings: Settings, topic: str, *, timeout_s: float = 120.0,
                  on_progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, int, bytes | None]]:
    """Every record of ``topic`` present when called, as (partition, offset, value), per partition in order.

    Stops at the end offsets taken at the start; raises ``TimeoutError`` if they are not reached in time.
    """
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="onestop-readback",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            raise LookupError(f"topic {topic!r} does not exist on {settings.kafka_bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        total = sum(ends[tp] - starts[tp] for tp in tps)
        remaining = {tp for tp in tps if ends[tp] > starts[tp]}
        done = 0
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end offsets within {timeout_s:.0f}s")
            polled = consumer.poll(timeout_ms=500, max_records=50_000)
            for tp, records in polled.items():
                for r in records:
                    if r.offset < ends[tp]:
                        done += 1
                        yield tp.partition, r.offset, r.value
            for tp in list(remaining):
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if on_progress is not None:
                on_progress(done, total)
    finally:
        consumer.close()


def latest_rows(settings: Settings, topic: str | None = None) -> dict[Key, tuple[int, int]]:
    """(family, *key, source_partition) → (version, count) of the highest version seen, if still valid."""
    return latest_of(_batches(settings, topic or settings.topic_metrics))


def latest_of(batches: Iterable[CounterBatch]) -> dict[Key, tuple[int, int]]:
    """Fold counter batches (in any order) into the valid latest row per (family, *key, source_partition)."""
    latest: dict[Key, tuple[int, int]] = {}
    epochs: dict[int, int] = {}
    for batch in batches:
        p, version = batch.source_partition, batch.version
        epochs[p] = max(epochs.get(p, 0), batch.epoch)
        for row in batch.rows:
            key = (*_hashable(row[:-1]), p)
            have = latest.get(key)
            if have is None or version > have[0]:
                latest[key] = (version, int(row[-1]))
    # A row below its partition's latest epoch was superseded by a rebuild that did not re-send it: zero.
    return {key: row for key, row in latest.items() if row[0] >= epochs.get(key[-1], 0)}


def totals_of(latest: dict[Key, tuple[int, int]]) -> dict[Key, int]:
    """Sum the valid latest rows over source partitions: (family, *key) → count, without zeros."""
    totals: dict[Key, int] = defaultdict(int)
    for key, (_, count) in latest.items():
        totals[key[:-1]] += count
    return {k: v for k, v in totals.items() if v}


def _batches(settings: Settings, topic: str) -> Iterator[CounterBatch]:
    for _, _, raw in consume_topic(settings, topic):
        if not raw:
            continue
        try:
            yield _batch.decode(raw)
        except msgspec.MsgspecError:
            continue  # not a counter batch: nothing of ours


def read_counters(settings: Settings, topic: str | None = None) -> dict[Key, int]:
    """The current value of every counter: (family, *key) → count, summed over source partitions, no zeros.

    Keys are as they travel in JSON: throughput bucket starts are ISO strings.
    """
    return totals_of(latest_rows(settings, topic))


def read_alert_records(settings: Settings, topic: str | None = None) -> list[Alert]:
    """Every alert record on the topic, duplicates included, in per-partition order."""
    out = []
    for _, _, raw in consume_topic(settings, topic or settings.topic_alerts):
        if not raw:
            continue
        try:
            out.append(decode_alert(raw))
        except msgspec.MsgspecError:
            continue
    return out


def read_alerts(settings: Settings, topic: str | None = None) -> tuple[set[str], int]:
    """(distinct alert ids, number of alert records): records minus ids is what was redelivered."""
    records = read_alert_records(settings, topic)
    return {a.alert_id for a in records}, len(records)


def family_totals(counters: dict[Key, int]) -> dict[str, int]:
    """Sum per family (backlog = open dossiers; throughput and on-time summed over all their buckets)."""
    out: dict[str, int] = defaultdict(int)
    for key, n in counters.items():
        out[key[0]] += n
    return dict(out)


def diff_counters(left: dict[Key, int], right: dict[Key, int]) -> dict[Key, tuple[int, int]]:
    """Keys whose values differ: key → (left, right), missing keys counting as 0."""
    return {k: (left.get(k, 0), right.get(k, 0)) for k in sorted(set(left) | set(right), key=repr)
            if left.get(k, 0) != right.get(k, 0)}


def _hashable(values: Any) -> tuple:
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)
