"""The ClickHouse writer: every pipeline topic into its tables, deduplicated, committed after the write.

Per poll, records are grouped per topic-partition and written with one insert
per table, carrying ``insert_deduplication_token =
topic:partition:first-last:table``. The Kafka offsets are committed only after
every insert of the poll succeeded, so a crash replays the batch and the token
(or the ReplacingMergeTree key) drops what was already written.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge

from onestop.settings import Settings
from sinks import metrics as sink_metrics
from sinks.clickhouse import connect, ensure_schema, insert
from sinks.rows import COLUMNS, BadRecord, Rows, alert_rows, counter_rows, dead_letter_rows, event_rows

log = logging.getLogger(__name__)

ROWS = Counter("onestop_sink_rows_total", "Rows written to ClickHouse", ["table"])
SKIPPED = Counter("onestop_sink_skipped_total", "Records the sink could not decode", ["topic"])
LAG = Gauge("onestop_sink_lag_events", "Records behind the end of the sink's topics")


class ClickHouseWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = settings.clickhouse_database
        self.client = connect(settings)
        ensure_schema(self.client, self.db)
        self._stop = threading.Event()
        self.routes: dict[str, Callable[[bytes, int, int], Rows]] = {
            settings.topic_events: event_rows,
            settings.topic_metrics: counter_rows,
            settings.topic_alerts: alert_rows,
            settings.topic_dlq: dead_letter_rows,
        }

    def write_batch(self, records: dict[TopicPartition, list]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Insert one poll's records; return the offsets that may now be committed."""
        commits = {}
        for tp, msgs in records.items():
            to_rows, tables = self.routes[tp.topic], {}
            for m in msgs:
                try:
                    for table, rows in to_rows(m.value, tp.partition, m.offset).items():
                        tables.setdefault(table, []).extend(rows)
                except BadRecord:
                    SKIPPED.labels(tp.topic).inc()
            for table, rows in tables.items():
                token = f"{tp.topic}:{tp.partition}:{msgs[0].offset}-{msgs[-1].offset}:{table}"
                insert(self.client, f"{self.db}.{table}", rows, COLUMNS[table], token=token)
                ROWS.labels(table).inc(len(rows))
            commits[tp] = OffsetAndMetadata(msgs[-1].offset + 1, "", -1)
        return commits

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


def run_sink(settings: Settings) -> None:
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.web_host)
    ClickHouseWriter(settings).run()
