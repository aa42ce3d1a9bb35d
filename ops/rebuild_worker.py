"""One partition group of ``onestop rebuild``: read its records, fold them, and hand back columnar rows.

A plain kafka-python consumer is assigned the group's partitions (no consumer
group, nothing committed) and reads each from its first offset to the end
offset the rebuild took when it started, in large fetches. Every record goes
through the worker's fold (``ops.bulk_fold``) and, when it meets the contract
and admission, becomes its rows of ``dossier_events`` and ``event_deliveries``
(``sinks.rows``, the writer's own row functions). Rows leave in chunks, as
Arrow tables with the deduplication token of the offsets they hold; at the end
come the alerts, the final dossiers and the counts.

The group runs in the rebuild's process or in a child process of its own
(``ops.rebuild``), which sends the same outputs over a pipe.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from onestop.settings import Settings
from ops.bulk_fold import BulkFold
from sinks import history_schema, practice_schema, schema
from sinks.arrow_rows import arrow_table
from sinks.rows import COLUMNS, alert_row, counter_batch_rows, delivery_row, dossier_row, event_row

# Consumer settings of the bulk read (the benchmark's raw consumer uses the same).
FETCH = {"max_poll_records": 20_000, "fetch_max_bytes": 64 * 1024 * 1024,
         "max_partition_fetch_bytes": 8 * 1024 * 1024, "receive_buffer_bytes": 4 * 1024 * 1024}
POLL_MS = 1000
PROGRESS_EVERY = 5000  # records read between two progress reports


@dataclass(frozen=True)
class Span:
    """Offsets ``start`` .. ``end - 1`` of one partition."""

    partition: int
    start: int
    end: int

    @property
    def records(self) -> int:
        return max(0, self.end - self.start)


@dataclass
class Output:
    """Rows for one table, or progress: what a partition group hands to the rebuild."""

    table: str | None  # None: progress only
    token: str = ""
    data: Any = None  # a pyarrow.Table
    records: int = 0  # records of dossier.events read since the last output
    refused_rows: int = 0  # rows set apart because a value does not fit its column


@dataclass
class GroupResult:
    records: int = 0
    refused: int = 0  # records that break the contract or admission
    failed: int = 0  # records the fold raised on
    unstorable: int = 0  # rows a value of which does not fit its column


def consumer_for(settings: Settings, client_id: str) -> Any:
    from kafka import KafkaConsumer

    # kafka-python warns when parsing one large fetch keeps its I/O loop busy for more than 0.1 s. A bulk
    # read does that by design, and nothing waits on this consumer (no group, no heartbeat).
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    return KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=None,
                         enable_auto_commit=False, client_id=client_id, **FETCH)


def received_at(timestamp_ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc) if timestamp_ms and timestamp_ms > 0 else None


class GroupRebuild:
    """Read, fold and turn into rows the records of ``spans`` (one partition group)."""

    def __init__(self, settings: Settings, spans: list[Span], *, run: str, version: int, chunk: int,
                 emit: Callable[[Output], None]) -> None:
        self.settings, self.spans, self.run, self.version = settings, spans, run, version
        self.chunk, self.emit = chunk, emit
        self.fold = BulkFold(settings, [s.partition for s in spans])
        self.result = GroupResult()
        self._events: list[list] = []
        self._deliveries: list[list] = []
        self._offsets: dict[int, list[int]] = {}  # partition → [first, last] offset in the waiting rows
        self._unreported = 0

    def run_all(self) -> GroupResult:
        gc.freeze()  # what is there already (in a forked worker, all its parent's objects) is never collected
        if self.settings.worker_gc_threshold:  # a large long-lived heap, as in the worker
            gc.set_threshold(*(int(x) for x in self.settings.worker_gc_threshold.split(",")))
        self._read()
        self._flush_events()
        self._finish()
        return self.result

    def _read(self) -> None:
        from kafka import TopicPartition

        topic = self.settings.topic_events
        pending = {TopicPartition(topic, s.partition): s for s in self.spans if s.records}
        if not pending:
            return
        consumer = consumer_for(self.settings, f"onestop-rebuild-{self.run}")
        try:
            consumer.assign(list(pending))
            for tp, span in pending.items():
                consumer.seek(tp, span.start)
            while pending:
                for tp, records in consumer.poll(timeout_ms=POLL_MS).items():
                    span = pending.get(tp)
                    if span is not None:
                        self._records(tp.partition, span.end, records)
                for tp in [tp for tp, span in pending.items() if consumer.position(tp) >= span.end]:
                    consumer.pause(tp)
                    del pending[tp]
                if len(self._events) >= self.chunk:
                    self._flush_events()
                elif self._unreported >= PROGRESS_EVERY:
                    self.emit(Output(None, records=self._take_unreported()))
        finally:
            consumer.close()

    def _records(self, partition: int, end: int, records: list) -> None:
        fold, events, deliveries = self.fold, self._events, self._deliveries
        admit, fold_one = fold.admit, fold.fold
        first = last = None
        for r in records:
            offset = r.offset
            if offset >= end:
                break
            last = offset
            if first is None:
                first = offset
            raw, at = r.value or b"", received_at(r.timestamp)
            event = admit(raw, at)
            if event is None:
                continue
            fold_one(partition, offset, raw, event, at)
            events.append(event_row(event, partition, offset))
            delivery = delivery_row(event, partition, offset, at, r.headers)
            if delivery is not None:
                deliveries.append(delivery)
        if first is None:
            return
        span = self._offsets.setdefault(partition, [first, last])
        span[1] = last
        done = last - first + 1
        self.result.records += done
        self._unreported += done

    def _take_unreported(self) -> int:
        n, self._unreported = self._unreported, 0
        return n

    def _span_text(self) -> str:
        return ",".join(f"{p}:{a}-{b}" for p, (a, b) in sorted(self._offsets.items()))

    def _flush_events(self) -> None:
        spans = self._span_text()
        records = self._take_unreported()
        for table, rows in ((schema.EVENTS, self._events), (practice_schema.DELIVERIES, self._deliveries)):
            self._send(table, rows, f"{table}:rebuild-{self.run}:{spans}", records)
            records = 0
        self._send(schema.ALERTS, [alert_row(a) for a in self.fold.take_alerts()],
                   f"{schema.ALERTS}:rebuild-{self.run}:{spans}")
        self._events, self._deliveries, self._offsets = [], [], {}

    def _send(self, table: str, rows: list[list], token: str, records: int = 0) -> None:
        if not rows and not records:
            return
        data, refused = arrow_table(table, COLUMNS[table], rows)
        self.result.unstorable += len(refused)
        self.emit(Output(table, token, data, records, len(refused)))

    def _finish(self) -> None:
        """The alerts not sent yet, every dossier's last state, and the counts with their epochs."""
        fold, group = self.fold, ",".join(str(s.partition) for s in self.spans)
        tables: dict[str, list[list]] = {
            schema.ALERTS: [alert_row(a) for a in fold.take_alerts()],
            # offset 0: a rebuilt dossier has no dossier.state record
            history_schema.DOSSIERS: [dossier_row(d, 0) for d in fold.dossier_records()],
        }
        for batch in fold.counter_batches(self.version):
            for table, rows in counter_batch_rows(batch).items():
                tables.setdefault(table, []).extend(rows)
        for table, rows in tables.items():
            for i in range(0, len(rows), self.chunk):
                self._send(table, rows[i:i + self.chunk], f"{table}:rebuild-{self.run}:end:{group}:{i}")
        self.result.refused, self.result.failed = fold.refused, fold.failed


def run_group(settings: Settings, spans: list[Span], run: str, version: int, chunk: int,
              emit: Callable[[Output], None]) -> GroupResult:
    return GroupRebuild(settings, spans, run=run, version=version, chunk=chunk, emit=emit).run_all()
