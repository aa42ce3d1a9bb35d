"""The Faust application: per-dossier state, rolling backlog, throughput, on-time counts and SLA alerts.

One agent consumes ``dossier.events`` and ``dossier.ticks`` (co-partitioned,
keyed by dossier_id) and hands each record to the ``Processor``. The
``dossier-state`` table (RocksDB, changelog-backed) holds every dossier; it is
only written in stream context, never from a timer. Timers do two things
only: send a tick per assigned partition (the wall clock reaches the deadline
index through the stream) and publish changed counters to ``ioc.metrics``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from datetime import timedelta
from pathlib import Path

import faust
import msgspec
from prometheus_client import Counter

from onestop import dlq
from onestop.catalogue import load_catalogue
from onestop.settings import Settings
from onestop.sla import SlaPolicy
from onestop.workcal import load_calendar
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored, encode_alert
from streams.processor import Effects, Processor

log = logging.getLogger(__name__)

EVENTS = Counter("onestop_worker_events_total", "Records handled by the worker", ["outcome"])
DLQ = Counter("onestop_dlq_records_total", "Records sent to the dead-letter topic", ["reason", "source"])
ALERTS = Counter("onestop_alerts_total", "SLA alerts emitted", ["kind"])
_json = msgspec.json.Encoder()
STATE_TABLE = "dossier-state"


def changelog_topic(settings: Settings) -> str:
    """The state table's changelog topic, as Faust names it. Create it before a new app id's first start:
    Faust creates it itself, but a consumer that joins before the new topic reaches its metadata is
    assigned none of it, and the agent then fails on every record (PartitionsMismatch) until restarted."""
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


class TableStore:
    """The Processor's view of the Faust table (raw bytes both ways).

    Writes are held until ``flush``. The agent first gets a record's alerts and dead letters
    acknowledged by Kafka and only then writes the dossiers that remember them: RocksDB keeps a
    write even if the process is killed a moment later, and a dossier that already lists an alert
    id never sends it again, so a write ahead of its alert would lose that alert for good. In this
    order a crash in between only redelivers the record, and the same alert ids go out again.
    """

    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self.pending: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self.pending.get(key)
        return value if value is not None else self.table.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self.pending[key] = value

    def flush(self) -> None:
        """Write the held dossiers (in stream context: each lands in the current record's partition)."""
        for key, value in self.pending.items():
            self.table[key] = value
        self.pending.clear()


def build_processor(settings: Settings) -> Processor:
    policy = SlaPolicy(due_soon_within=settings.due_soon_hours)
    evaluator = Evaluator(load_calendar(settings.calendar_override), load_catalogue(settings.catalogue_file),
                          policy, settings.escalate_after_working_days)
    clock = Clock(settings.clock, allowed_lateness=timedelta(seconds=settings.allowed_lateness_s),
                  live_lag=settings.live_lag)
    return Processor(evaluator, clock)


def _raw_topic(app: faust.App, name: str, settings: Settings) -> faust.TopicT:
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=settings.partitions)


def create_app(settings: Settings, processor: Processor | None = None, *, store_url: str = "rocksdb://") -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.kafka_bootstrap.split(",")],
        store=store_url,
        datadir=str(settings.home / "faust" / settings.app_id),
        web_bind=settings.web_host, web_host=settings.web_host,
        web_port=settings.web_port or 6066, web_enabled=settings.web_port != 0,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        table_standby_replicas=0,
        broker_commit_every=2000,
        broker_commit_interval=1.0,
        key_serializer="raw",  # records are encoded with msgspec by us: cheaper than Faust's codecs
        value_serializer="raw",
    )
    processor = processor or build_processor(settings)
    source = app.topic(settings.topic_events, settings.topic_ticks, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")
    ticks = _raw_topic(app, settings.topic_ticks, settings)
    dlq_topic = _raw_topic(app, settings.topic_dlq, settings)
    metrics = _raw_topic(app, settings.topic_metrics, settings)
    alerts = _raw_topic(app, settings.topic_alerts, settings)
    table = app.Table(STATE_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    store = TableStore(table)
    fresh = {"value": True}

    def actives() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.topic_events}

    @app.on_partitions_revoked.connect
    async def _revoked(sender: object, revoked: set, **kw: object) -> None:
        processor.forget({tp.partition for tp in revoked if tp.topic == settings.topic_events})
        fresh["value"] = True

    @app.on_partitions_assigned.connect
    async def _assigned(sender: object, assigned: set, **kw: object) -> None:
        fresh["value"] = True

    async def emit(fx: Effects, key: bytes | None) -> None:
        sent = []
        for record in fx.dead_letters:
            DLQ.labels(record.reason_code, "worker").inc()
            sent.append(await dlq_topic.send(key=record.dossier_id.encode() if record.dossier_id else key,
                                             value=dlq.encode(record)))
        for alert in fx.alerts:
            ALERTS.labels(alert.kind).inc()
            sent.append(await alerts.send(key=alert.dossier_id.encode(), value=encode_alert(alert)))
        acks = [f for f in sent if inspect.isawaitable(f)]  # (test doubles of Topic.send return None)
        if acks and store.pending:
            await asyncio.gather(*acks)  # acknowledged (acks=all) before the state that remembers them
        store.flush()

    @app.agent(source)
    async def fold_events(stream: faust.StreamT) -> None:
        async for ev in stream.events():
            store.pending.clear()  # nothing of a record that failed half-way is written
            if fresh["value"]:
                processor.rebuild((decode_stored(v) for v in table.values()), actives())
                fresh["value"] = False
            msg = ev.message
            if msg.topic == settings.topic_ticks:
                await emit(processor.on_tick(msg.partition, store), None)
                continue
            if processor.clock.mode == "wall":
                highwater = app.consumer.highwater(msg.tp)
                processor.clock.set_lag(msg.partition, (highwater or 0) - msg.offset - 1)
            fx = processor.on_event(msg.partition, msg.offset, ev.value, store)
            EVENTS.labels("applied" if fx.applied else "duplicate" if fx.duplicates else "other").inc()
            await emit(fx, ev.key)

    if settings.clock == "wall":
        @app.timer(interval=settings.tick_interval_s)
        async def send_ticks() -> None:
            for p in sorted(actives()):
                await ticks.send(key=None, value=b"", partition=p)

    @app.timer(interval=settings.publish_interval_s)
    async def publish_counters() -> None:
        as_of = {p: processor.clock.now(p) for p in processor.counters.counts}
        for p, clock in as_of.items():
            processor.counters.evict(p, clock)
        for batch in processor.counters.drain(as_of):
            await metrics.send(key=str(batch.source_partition).encode(), value=_json.encode(batch))

    app.onestop_processor = processor  # type: ignore[attr-defined]  # for tests
    app.onestop_agent = fold_events  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    Path(settings.home / "faust" / settings.app_id).mkdir(parents=True, exist_ok=True)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.web_host)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
