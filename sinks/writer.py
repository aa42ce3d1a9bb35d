"""The ClickHouse writer: ``dossier.events`` → raw events, ``ioc.metrics`` → backlog counts.

Per poll, rows are grouped per topic-partition and written with one insert
each, carrying ``insert_deduplication_token = topic:partition:first-last``.
The Kafka offset is committed only after every insert of the poll succeeded,
so a crash replays the batch and the token (or the ReplacingMergeTree key)
drops what was already written.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Callable

import msgspec
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge

from onestop import events
from onestop.settings import Settings
from sinks import schema
from sinks.clickhouse import connect, ensure_schema, insert
from streams.backlog import BacklogSnapshot

log = logging.getLogger(__name__)

ROWS = Counter("onestop_sink_rows_total", "Rows written to ClickHouse", ["table"])
SKIPPED = Counter("onestop_sink_skipped_total", "Records the sink could not decode (the worker dead-letters them)",
                  ["topic"])
LAG = Gauge("onestop_sink_lag_events", "Records behind the end of the sink's topics")

EVENT_COLUMNS = [
    "event_id", "event_type", "dossier_id", "seq", "occurred_at", "commune_code", "handling_commune_code",
    "procedure_code", "channel", "due_at", "step", "reason", "source", "schema_version",
    "kafka_partition", "kafka_offset",
]
BACKLOG_COLUMNS = ["commune_code", "source_partition", "open_dossiers", "version", "as_of"]
_snapshot = msgspec.json.Decoder(BacklogSnapshot)


def event_row(e: events.DossierEvent, partition: int, offset: int) -> list[Any]:
    return [
        e.event_id, e.event_type.value, e.dossier_id, e.seq, e.occurred_at, e.commune_code, e.handling_unit,
        e.procedure_code, int(e.channel), e.due_at, e.step, e.reason, e.source, e.schema_version,
        partition, offset,
    ]


def backlog_row(s: BacklogSnapshot) -> list[Any]:
    return [s.commune_code, s.source_partition, s.open_dossiers, s.version, s.as_of]


class ClickHouseWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = settings.clickhouse_database
        self.client = connect(settings)
        ensure_schema(self.client, self.db)
        self._stop = threading.Event()
        self.routes: dict[str, tuple[str, list[str], Callable[[bytes, int, int], list[Any] | None]]] = {
            settings.topic_events: (schema.EVENTS, EVENT_COLUMNS, self._event),
            settings.topic_metrics: (schema.BACKLOG_PARTS, BACKLOG_COLUMNS, self._metric),
        }

    @staticmethod
    def _event(raw: bytes, partition: int, offset: int) -> list[Any] | None:
        try:
            return event_row(events.decode(raw), partition, offset)
        except events.ContractError:
            return None

    @staticmethod
    def _metric(raw: bytes, partition: int, offset: int) -> list[Any] | None:
        try:
            return backlog_row(_snapshot.decode(raw))
        except msgspec.MsgspecError:
            return None

    def write_batch(self, records: dict[TopicPartition, list]) -> dict[TopicPartition, OffsetAndMetadata]:
        """Insert one poll's records; return the offsets that may now be committed."""
        commits = {}
        for tp, msgs in records.items():
            table, columns, to_row = self.routes[tp.topic]
            rows = []
            for m in msgs:
                row = to_row(m.value, tp.partition, m.offset)
                (rows.append(row) if row is not None else SKIPPED.labels(tp.topic).inc())
            token = f"{tp.topic}:{tp.partition}:{msgs[0].offset}-{msgs[-1].offset}"
            insert(self.client, f"{self.db}.{table}", rows, columns, token=token)
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
        )
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
                consumer.commit(self.write_batch(records))
                self._update_lag(consumer)
        finally:
            consumer.close()
            self.client.close()
            log.info("sink stopped")

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        assigned = consumer.assignment()
        if not assigned:
            return
        ends = consumer.end_offsets(list(assigned))
        LAG.set(sum(max(0, ends[tp] - (consumer.position(tp) or 0)) for tp in assigned))


def run_sink(settings: Settings) -> None:
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.web_host)
    ClickHouseWriter(settings).run()
