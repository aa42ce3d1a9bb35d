"""The ClickHouse writer under failure: real Kafka, real chDB, a real ``onestop sink`` process where it can be.

- ``kill -9`` of the sink while it writes, then a restart: every event is stored once.
- The store fails for two minutes under load, then recovers: nothing is lost or doubled. A
  ClickHouse server cannot run here and chDB cannot be stopped from outside the process that
  holds it, so the outage is injected at the client seam: ``Outage`` wraps the real chDB client
  and refuses every call while the outage lasts. Everything else is the real writer.
- The same ``event_id`` delivered twice is counted once, with and without FINAL.
- One write is one insert per table, however many partitions it holds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from datetime import date

import pytest
from kafka import KafkaProducer

from ops.lag import group_lag, wait_caught_up
from ops.services import Services
from producers.publisher import Publisher
from producers.simulator import SimulationConfig, simulate
from sinks.clickhouse import connect, query
from sinks.writer import ClickHouseWriter

pytestmark = pytest.mark.integration

OUTAGE_S = float(os.environ.get("ONESTOP_TEST_OUTAGE_S", "120"))


class Outage:
    """A clickhouse-connect client that refuses every call while ``down`` is set (the failure seam)."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self._client = client
        self.down = threading.Event()
        self.refused = Counter()
        self.inserts: list[str] = []  # table of every insert that reached the store

    def _gate(self, what: str) -> None:
        if self.down.is_set():
            self.refused[what] += 1
            raise ConnectionError("injected outage: the store does not answer")

    def insert(self, table, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._gate("insert")
        result = self._client.insert(table, *args, **kwargs)
        self.inserts.append(table.split(".")[-1])
        return result

    def query(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._gate("query")
        return self._client.query(*args, **kwargs)

    def command(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._gate("command")
        return self._client.command(*args, **kwargs)

    def close(self) -> None:
        self._client.close()


def _events(seed: int, dossiers: int, communes: int = 6):
    return list(simulate(SimulationConfig(communes=communes, dossiers=dossiers, seed=seed,
                                          start=date(2026, 11, 2), days=10)))


def _stored(settings) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    """(rows FINAL, distinct event ids, rows of the unique view, events counted by the per-minute view)."""
    client = connect(settings)
    try:
        db = settings.clickhouse_database
        _, [(rows, distinct)] = query(client, f"SELECT count(), uniqExact(event_id) FROM {db}.dossier_events FINAL")
        _, [(unique,)] = query(client, f"SELECT count() FROM {db}.dossier_events_unique")
        _, [(per_minute,)] = query(client, f"SELECT sum(events) FROM {db}.events_per_minute_counts")
        return rows, distinct, unique, per_minute
    finally:
        client.close()


def _in_thread(writer: ClickHouseWriter) -> threading.Thread:
    thread = threading.Thread(target=writer.run, name="sink-under-test", daemon=True)
    thread.start()
    return thread


def test_a_sink_killed_mid_batch_stores_every_event_once_after_its_restart(isolate, tmp_path):
    settings = isolate("sinkkill", home=tmp_path, sink_group="it-sink-kill", clickhouse_dsn="", sink_batch_size=500)
    evs = _events(seed=4242, dossiers=6000)
    groups = {settings.sink_group: [settings.topic_events]}
    services = Services(settings)
    kills = 0
    try:
        with Publisher(settings) as pub:
            pub.publish_many(evs)
            pub.flush(timeout=120)
        services.start("sink", "sink")
        deadline = time.monotonic() + 180
        while kills < 2 and time.monotonic() < deadline:  # kill it twice while it is part-way through
            lag = group_lag(settings, settings.sink_group, [settings.topic_events])
            if 0 < lag < len(evs) * (0.8 if kills == 0 else 0.5):
                services.procs["sink"].send_signal(signal.SIGKILL)
                services.procs.pop("sink").wait(30)
                kills += 1
                services.start("sink", "sink")
            time.sleep(0.05)
        assert kills == 2, "the sink finished before it could be killed part-way"
        wait_caught_up(settings, groups, timeout=240, settle=2.0, on_poll=lambda _: services.check_alive())
    finally:
        services.stop_all()
    assert _stored(settings) == (len(evs), len(evs), len(evs), len(evs))


def test_a_two_minute_store_outage_under_load_loses_nothing_and_doubles_nothing(isolate, tmp_path):
    settings = isolate("sinkoutage", home=tmp_path, sink_group="it-sink-outage", clickhouse_dsn="",
                       sink_retry_max_s=5.0)
    evs = _events(seed=777, dossiers=9000)
    store = Outage(connect(settings))
    writer = ClickHouseWriter(settings, client=store)
    thread = _in_thread(writer)
    published = threading.Event()

    def load() -> None:  # a steady flow across the outage
        with Publisher(settings) as pub:
            step = max(1, len(evs) // 200)
            for i in range(0, len(evs), step):
                pub.publish_many(evs[i:i + step])
                pub.flush(timeout=60)
                time.sleep((OUTAGE_S + 20) / 200)
        published.set()

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        time.sleep(5)
        store.down.set()
        time.sleep(OUTAGE_S)
        assert thread.is_alive(), "the sink died during the outage"
        behind = group_lag(settings, settings.sink_group, [settings.topic_events])
        store.down.clear()
        assert published.wait(OUTAGE_S + 120)
        wait_caught_up(settings, {settings.sink_group: [settings.topic_events]}, timeout=240, settle=2.0)
    finally:
        store.down.clear()
        writer.stop()
        thread.join(60)
        loader.join(60)
    assert store.refused["insert"] + store.refused["query"] > 0  # the writer did meet the outage
    assert behind > 0  # and nothing was committed while it lasted
    assert _stored(settings) == (len(evs), len(evs), len(evs), len(evs))


def test_the_same_event_id_sent_twice_is_counted_once(isolate, tmp_path):
    settings = isolate("sinktwice", home=tmp_path, sink_group="it-sink-twice", clickhouse_dsn="")
    evs = _events(seed=31, dossiers=40, communes=2)
    from onestop import events as contract

    twice = evs[:25]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    try:
        for e in evs + twice:  # the first 25 again, at later offsets, as a producer that retried would
            producer.send(settings.topic_events, key=e.dossier_id.encode(), value=contract.encode(e))
        producer.flush(30)
    finally:
        producer.close()
    writer = ClickHouseWriter(settings)
    writer.run(idle_exit=3.0)
    client = connect(settings)
    try:
        db = settings.clickhouse_database
        _, [(raw,)] = query(client, f"SELECT count() FROM {db}.event_deliveries")
    finally:
        client.close()
    assert raw == len(evs) + len(twice)  # both deliveries arrived
    assert _stored(settings) == (len(evs), len(evs), len(evs), len(evs))


def test_one_write_is_one_insert_per_table_whatever_the_partitions(isolate, tmp_path):
    settings = isolate("sinkparts", home=tmp_path, sink_group="it-sink-parts", clickhouse_dsn="",
                       sink_batch_size=100_000, sink_linger_s=3.0)
    evs = _events(seed=5, dossiers=600)
    with Publisher(settings) as pub:
        pub.publish_many(evs)
        pub.flush(timeout=60)
    store = Outage(connect(settings))
    writer = ClickHouseWriter(settings, client=store)
    before = len(store.inserts)  # the communes dimension, loaded at start
    writer.run(idle_exit=4.0)
    written = Counter(store.inserts[before:])
    client = connect(settings)
    try:
        _, [(partitions,)] = query(client, f"SELECT uniqExact(kafka_partition) FROM {settings.clickhouse_database}"
                                           ".dossier_events")
    finally:
        client.close()
    assert partitions == settings.partitions  # the write held records of every partition
    assert written == {"dossier_events": 1, "event_deliveries": 1}
