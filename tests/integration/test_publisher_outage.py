"""A Kafka outage in the middle of a run: nothing lost, nothing doubled, every dossier in seq order.

The test runs its own broker (its own home and ports), stops it while events
are in flight, keeps publishing (they go to the spool), starts it again and
checks the whole topic. The session broker of the other tests is not touched.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date

import pytest
from kafka import KafkaConsumer, TopicPartition

from onestop import events
from ops import broker
from ops.topics import create_topics
from onestop.settings import Settings
from producers.publisher import Publisher
from producers.settings import PublisherSettings
from producers.simulator import SimulationConfig, simulate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

RUN = 3000


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def read_topic(settings: Settings, timeout: float = 60.0) -> dict[int, list]:
    """Every record of the events topic, per partition, in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(settings.topic_events, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: dict[int, list] = {tp.partition: [] for tp in tps}
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "could not read the topic back in time"
            for tp, recs in consumer.poll(timeout_ms=1000).items():
                out[tp.partition].extend(recs)
        return out
    finally:
        consumer.close()


def run_with_outage(settings: Settings, evs: list, ps: PublisherSettings):
    """Publish ``evs`` with the broker stopped in the middle; return the stats and the topic's records."""
    broker.start(settings)
    try:
        create_topics(settings)
        with Publisher(settings, client_id="outage-test", publisher_settings=ps) as pub:
            for e in evs[:1000]:
                pub.publish(e)
            broker.stop(settings)  # some of those 1,000 are still in flight
            for e in evs[1000:1100]:
                pub.publish(e)
            wait_for(lambda: pub.spooling, 30, "the publisher to notice the outage")
            pub.publish_many(evs[1100:2000])  # straight to the spool
            assert pub.stats.spool_depth >= 900
            broker.start(settings)
            pub.publish_many(evs[2000:])
            pub.flush(timeout=180)
            stats = pub.stats
        return stats, read_topic(settings)
    finally:
        broker.stop(settings)


def simulated() -> list:
    evs = list(simulate(SimulationConfig(communes=20, dossiers=1000, seed=2027, start=date(2026, 11, 2), days=10)))
    assert len(evs) >= RUN and len({e.dossier_id for e in evs[:RUN]}) >= 300
    return evs[:RUN]


def seqs_per_dossier(records: dict[int, list], *, first_copies_only: bool = False) -> dict[str, list[int]]:
    """Each dossier's seqs in arrival order (a dossier lives on one partition: offset order)."""
    seqs: dict[str, list[int]] = {}
    seen: set[str] = set()
    for recs in records.values():
        for r in recs:
            e = events.decode(r.value)
            if first_copies_only and e.event_id in seen:
                continue
            seen.add(e.event_id)
            seqs.setdefault(e.dossier_id, []).append(e.seq)
    return seqs


def test_no_event_is_lost_or_doubled_across_a_broker_outage(private_broker_settings: Settings, tmp_path) -> None:
    """The outage is noticed by a stalled acknowledgement; the producer keeps what it holds and
    delivers it itself when Kafka returns (idempotent retries), the spool the rest: exactly once."""
    evs = simulated()
    ps = PublisherSettings(spool_dir=tmp_path / "spool", stall_timeout_s=1.0, connect_timeout_ms=1000,
                           retry_backoff_s=0.2, retry_backoff_max_s=1.0, close_timeout_s=5.0)
    stats, records = run_with_outage(private_broker_settings, evs, ps)

    assert (stats.published, stats.delivered, stats.spool_depth, stats.spooling) == (RUN, RUN, 0, False)
    assert stats.spooled >= 900 and stats.drained == stats.spooled
    got = [(r.key, events.decode(r.value)) for recs in records.values() for r in recs]
    assert all(key == e.dossier_id.encode() for key, e in got)
    assert Counter(e.event_id for _, e in got) == Counter(e.event_id for e in evs), "lost or duplicated events"
    seqs = seqs_per_dossier(records)
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values()), "a dossier's events are out of order"
    # Late data: what the drain sent from the spool says so in a header; what went directly does not.
    marked = {events.decode(r.value).event_id: ("onestop-spooled", b"1") in (r.headers or [])
              for recs in records.values() for r in recs}
    assert all(marked[e.event_id] for e in evs[1100:2000]), "a record sent from the spool lacks the header"
    assert not any(marked[e.event_id] for e in evs[:1000]), "a record sent directly is marked as spooled"


def test_when_the_producer_gives_up_the_spool_resends_at_least_once(private_broker_settings: Settings,
                                                                     tmp_path) -> None:
    """With a short delivery timeout the producer gives up on what it holds and is replaced; the spool
    re-sends those records. Nothing is lost and the first copies are in seq order; a record Kafka wrote
    but could not acknowledge (in flight when it went away) may be stored twice: downstream
    deduplicates by event_id."""
    evs = simulated()
    ps = PublisherSettings(spool_dir=tmp_path / "spool", stall_timeout_s=60.0, delivery_timeout_ms=3000,
                           request_timeout_ms=1500, connect_timeout_ms=1000, retry_backoff_s=0.2,
                           retry_backoff_max_s=1.0, close_timeout_s=5.0)
    stats, records = run_with_outage(private_broker_settings, evs, ps)

    assert (stats.published, stats.delivered, stats.spool_depth) == (RUN, RUN, 0)
    counts = Counter(events.decode(r.value).event_id for recs in records.values() for r in recs)
    assert set(counts) == {e.event_id for e in evs}, "lost events"
    seqs = seqs_per_dossier(records, first_copies_only=True)
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values()), "a dossier's events are out of order"
