"""The ClickHouse writer: every pipeline topic into its tables, deduplicated, committed after the write.

Records are gathered per topic-partition. The batch is written when
``sink_batch_size`` records are waiting, or when the oldest waiting record has
waited ``sink_linger_s``: a quiet commune's events are never held back by a
busy one. A write is one insert per table, whatever the number of partitions
in it (ClickHouse is not flooded with small parts), each carrying an
``insert_deduplication_token`` made of the table and the offset ranges it
holds. The Kafka offsets are committed only after every insert succeeded, so a
crash replays the batch and the token, or the ReplacingMergeTree key, drops
what was already written.

A record that cannot be stored is dead-lettered instead, with its Kafka
coordinates (``sinks.isolate``, ``sinks.dead_letters``): it never stops the
sink. When the store itself is down, the writer pauses its partitions, keeps
its place in the consumer group, and retries the same batch with the same
tokens, backing off up to ``sink_retry_max_s``: nothing is dropped and the
process does not die.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from functools import partial
from typing import Any, Callable, Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge

from onestop.admission import rules_from
from onestop.catalogue import load_catalogue
from onestop.settings import Settings
from sinks import metrics as sink_metrics
from sinks.clickhouse import StoreError, connect, ensure_schema, insert, query
from sinks.columns import row_problem
from sinks.dead_letters import SinkDeadLetters
from sinks.isolate import Converter, RecordRows, convert, insert_isolated
from sinks.rows import COLUMNS, alert_rows, counter_rows, dead_letter_rows, dossier_rows, event_rows
from sinks.store_owner import serve_reads

log = logging.getLogger(__name__)

ROWS = Counter("onestop_sink_rows_total", "Rows written to ClickHouse", ["table"])
LAG = Gauge("onestop_sink_lag_events", "Records behind the end of the sink's topics")
STORE_DOWN = Gauge("onestop_sink_store_down", "1 while the ClickHouse writer waits for the store to come back")
RETRIES = Counter("onestop_sink_write_retries_total", "Writes retried because the store was down")

Records = dict[TopicPartition, list]


class ClickHouseWriter:
    def __init__(self, settings: Settings, *, client: Any = None) -> None:
        """``client``: a clickhouse-connect client to write through (default: ``sinks.clickhouse.connect``)."""
        self.settings = settings
        self.db = settings.clickhouse_database
        self.client = client if client is not None else connect(settings)
        ensure_schema(self.client, self.db)
        self._stop = threading.Event()
        self.dead_letters = SinkDeadLetters(settings)
        rules = rules_from(settings, load_catalogue(settings.catalogue_file))
        self.routes: dict[str, Converter] = {
            settings.topic_events: partial(event_rows, rules=rules),
            settings.topic_metrics: counter_rows,
            settings.topic_alerts: alert_rows,
            settings.topic_dlq: dead_letter_rows,
            settings.topic_state: dossier_rows,
        }
        self.inserts = 0  # inserts that reached the store (tests and benchmarks read it)

    def write_batch(self, records: Records) -> dict[TopicPartition, OffsetAndMetadata]:
        """Insert the records of every partition, one insert per table; return the offsets to commit.

        A record that cannot be converted, checked or inserted is set apart and dead-lettered
        (``sinks.isolate``); the rest is written and the offsets advance past both. Raises
        ``StoreError`` when the store is down: nothing is then refused and nothing may be committed."""
        tables: dict[str, list[RecordRows]] = {}
        refused = []
        for tp, msgs in records.items():
            batch = convert(tp.topic, tp.partition, msgs, self.routes[tp.topic], _row_problem)
            refused += batch.refused
            for table, items in batch.tables.items():
                tables.setdefault(table, []).extend(items)
        for table, items in tables.items():
            refused += insert_isolated("", -1, items, self._inserter(table), self._probe)
        self.dead_letters.send(refused)
        self.dead_letters.flush()  # acknowledged by Kafka before the commit moves past them
        return {tp: OffsetAndMetadata(msgs[-1].offset + 1, "", -1) for tp, msgs in records.items() if msgs}

    def _inserter(self, table: str) -> Callable[[Sequence[RecordRows]], None]:
        def insert_part(part: Sequence[RecordRows]) -> None:
            rows = [row for item in part for row in item.rows]
            insert(self.client, f"{self.db}.{table}", rows, COLUMNS[table], token=_token(table, part))
            self.inserts += 1
            ROWS.labels(table).inc(len(rows))
        return insert_part

    def _probe(self) -> None:
        query(self.client, "SELECT 1")

    def stop(self, *_: object) -> None:
        self._stop.set()

    def run(self, *, idle_exit: float | None = None) -> None:
        """Consume until stopped (SIGTERM/SIGINT), or until idle for ``idle_exit`` seconds."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap.split(","),
            group_id=self.settings.sink_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.sink_batch_size,
            client_id="onestop-sink",
            metadata_max_age_ms=30_000,
        )
        self._await_topics(consumer)
        consumer.subscribe(list(self.routes))
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        try:
            self._loop(consumer, idle_exit)
        finally:
            consumer.close()
            self.dead_letters.close()
            self.client.close()
            log.info("sink stopped")

    def _loop(self, consumer: KafkaConsumer, idle_exit: float | None) -> None:
        pending: Records = {}
        oldest: float | None = None  # when the oldest waiting record was polled
        waiting = 0
        idle_since = time.monotonic()
        linger = self.settings.sink_linger_s
        while not self._stop.is_set():
            now = time.monotonic()
            wait = linger if oldest is None else max(0.0, linger - (now - oldest))
            records = consumer.poll(timeout_ms=int(wait * 1000),
                                    max_records=max(1, self.settings.sink_batch_size - waiting))
            now = time.monotonic()
            if records:
                idle_since = now
                oldest = now if oldest is None else oldest
                for tp, msgs in records.items():
                    pending.setdefault(tp, []).extend(msgs)
                    waiting += len(msgs)
            if pending and (waiting >= self.settings.sink_batch_size or now - (oldest or now) >= linger):
                pending = {tp: msgs for tp, msgs in pending.items() if tp in consumer.assignment()}
                if pending and not self._write_until_stored(consumer, pending):
                    return  # stopped while the store was down: nothing committed, a restart writes it again
                pending, oldest, waiting = {}, None, 0
                self._update_lag(consumer)
            elif not records and idle_exit is not None and not pending and now - idle_since >= idle_exit:
                return

    def _write_until_stored(self, consumer: KafkaConsumer, records: Records) -> bool:
        """Write and commit ``records``; while the store is down, pause, back off and retry. False if stopped."""
        delay, paused = 0.5, False
        while True:
            try:
                with sink_metrics.writing(records, self.settings.sink_group):
                    commits = self.write_batch(records)
                break
            except StoreError as exc:
                if not paused:
                    log.error("the store is down, pausing the sink and retrying: %s", exc)
                    consumer.pause(*consumer.assignment())
                    paused = True
                    STORE_DOWN.set(1)
                RETRIES.inc()
                if self._stop.wait(delay):
                    return False
                consumer.poll(timeout_ms=0)  # paused: returns nothing, keeps the group's heartbeat going
                delay = min(delay * 2, self.settings.sink_retry_max_s)
        if paused:
            log.info("the store answers again; the sink resumes")
            consumer.resume(*consumer.paused())
            STORE_DOWN.set(0)
        owned = consumer.assignment()
        try:
            consumer.commit({tp: om for tp, om in commits.items() if tp in owned})
        except CommitFailedError as exc:  # a rebalance took partitions: their new owner writes them again
            log.warning("offsets not committed after a rebalance (the rows are idempotent): %s", exc)
        return True

    def _await_topics(self, consumer: KafkaConsumer, timeout: float = 60.0) -> None:
        """Join the group only once every topic's partitions are known, or the group assigns nothing."""
        deadline = time.monotonic() + timeout
        missing = list(self.routes)
        while missing and time.monotonic() < deadline and not self._stop.is_set():
            missing = [t for t in self.routes if not consumer.partitions_for_topic(t)]
            if missing:
                log.info("waiting for topics %s", missing)
                time.sleep(0.5)
        if missing:
            raise RuntimeError(f"topics {missing} do not exist on {self.settings.kafka_bootstrap}; "
                               "create them first (onestop kafka start creates the pipeline topics)")

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        assigned = consumer.assignment()
        if not assigned:
            return
        LAG.set(sink_metrics.record_lag(consumer, self.settings.sink_group))


def _token(table: str, part: Sequence[RecordRows]) -> str:
    """The same rows of the same records give the same token, so a retried insert is dropped."""
    spans: dict[tuple[str, int], list[int]] = {}
    for item in part:
        span = spans.setdefault((item.topic, item.partition), [item.offset, item.offset])
        span[0], span[1] = min(span[0], item.offset), max(span[1], item.offset)
    text = ",".join(f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(spans.items()))
    return f"{table}:{len(part)}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _row_problem(table: str, row: list) -> str | None:
    return row_problem(table, COLUMNS[table], row)


def run_sink(settings: Settings) -> None:
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.web_host)
    writer = ClickHouseWriter(settings)
    with serve_reads(settings):  # the embedded store's owner answers read-only queries on loopback
        writer.run()
