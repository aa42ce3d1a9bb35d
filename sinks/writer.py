"""The ClickHouse writer: every pipeline topic into its tables, deduplicated, committed after the write.

Per poll, records are grouped per topic-partition and written with one insert
per table, carrying ``insert_deduplication_token =
topic:partition:first-last:table``. The Kafka offsets are committed only after
every insert of the poll succeeded, so a crash replays the batch and the token
(or the ReplacingMergeTree key) drops what was already written. A record that
cannot be stored is dead-lettered instead, with its Kafka coordinates
(``sinks.isolate``, ``sinks.dead_letters``): it never stops the sink.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from functools import partial
from typing import Callable, Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge

from onestop.admission import rules_from
from onestop.catalogue import load_catalogue
from onestop.settings import Settings
from sinks import metrics as sink_metrics
from sinks.clickhouse import connect, ensure_schema, insert, query
from sinks.columns import row_problem
from sinks.dead_letters import SinkDeadLetters
from sinks.isolate import Converter, RecordRows, convert, insert_isolated
from sinks.rows import COLUMNS, alert_rows, counter_rows, dead_letter_rows, event_rows
from sinks.store_owner import serve_reads

log = logging.getLogger(__name__)

ROWS = Counter("onestop_sink_rows_total", "Rows written to ClickHouse", ["table"])
LAG = Gauge("onestop_sink_lag_events", "Records behind the end of the sink's topics")


class ClickHouseWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = settings.clickhouse_database
        self.client = connect(settings)
        ensure_schema(self.client, self.db)
        self._stop = threading.Event()
        self.dead_letters = SinkDeadLetters(settings)
        rules = rules_from(settings, load_catalogue(settings.catalogue_file))
        self.routes: dict[str, Converter] = {
            settings.topic_events: partial(event_rows, rules=rules),
            settings.topic_metrics: counter_rows,
            settings.topic_alerts: alert_rows,
            settings.topic_dlq: dead_letter_rows,
        }

    def write_batch(self, records: dict[TopicPartition, list]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Insert one poll's records; return the offsets that may now be committed.

        A record that cannot be converted, checked or inserted is set apart and dead-lettered
        (``sinks.isolate``); the rest is written and the offsets advance past both."""
        commits = {}
        for tp, msgs in records.items():
            batch = convert(tp.topic, tp.partition, msgs, self.routes[tp.topic], _row_problem)
            for table, items in batch.tables.items():
                batch.refused += insert_isolated(tp.topic, tp.partition, items, self._inserter(tp, table), self._probe)
            self.dead_letters.send(batch.refused)
            commits[tp] = OffsetAndMetadata(msgs[-1].offset + 1, "", -1)
        self.dead_letters.flush()  # acknowledged by Kafka before the commit moves past them
        return commits

    def _inserter(self, tp: TopicPartition, table: str) -> Callable[[Sequence[RecordRows]], None]:
        def insert_part(part: Sequence[RecordRows]) -> None:
            rows = [row for item in part for row in item.rows]
            token = f"{tp.topic}:{tp.partition}:{part[0].offset}-{part[-1].offset}:{table}"
            insert(self.client, f"{self.db}.{table}", rows, COLUMNS[table], token=token)
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
        idle = 0.0
        try:
            while not self._stop.is_set():
                records = consumer.poll(timeout_ms=500, max_records=self.settings.sink_batch_size)
                if not records:
                    idle += 0.5
                    if idle_exit is not None and idle >= idle_exit:
                        break
                    continue
                idle = 0.0
                with sink_metrics.writing(records, self.settings.sink_group):
                    commits = self.write_batch(records)
                consumer.commit(commits)
                self._update_lag(consumer)
        finally:
            consumer.close()
            self.dead_letters.close()
            self.client.close()
            log.info("sink stopped")

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


def _row_problem(table: str, row: list) -> str | None:
    return row_problem(table, COLUMNS[table], row)


def run_sink(settings: Settings) -> None:
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.web_host)
    writer = ClickHouseWriter(settings)
    with serve_reads(settings):  # the embedded store's owner answers read-only queries on loopback
        writer.run()
