"""The Faust application: per-dossier state, rolling backlog, throughput, on-time counts and SLA alerts.

One agent consumes ``dossier.events`` and ``dossier.ticks`` (co-partitioned,
keyed by dossier_id) in batches (``stream.take_events``: up to
``worker_batch`` records, or what arrived within ``worker_batch_within_s``)
and hands each record to the ``Processor``. The ``dossier-state`` table
(RocksDB, changelog-backed) holds every dossier. It is only written by the
agent, at the end of a batch, never from a timer. A batch ends in this
order: its alerts and dead letters are acknowledged by Kafka, then the
dossier states that remember them are (one record batch per changelog
partition, ``streams.outbox``), then those states are applied to RocksDB
(``streams.state``), and only then are the input records acknowledged.

Timers do two things only: send a tick per assigned partition (the wall clock
reaches the deadline index through the stream) and publish changed counters to
``ioc.metrics``.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Callable

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
from streams.outbox import KafkaOutbox, Outbox, OutRecord
from streams.processor import Effects, Processor
from streams.state import BatchState, TableState

log = logging.getLogger(__name__)

EVENTS = Counter("onestop_worker_events_total", "Records handled by the worker", ["outcome"])
APPLIED, DUPLICATE, OTHER = (EVENTS.labels(o) for o in ("applied", "duplicate", "other"))
DLQ = Counter("onestop_dlq_records_total", "Records sent to the dead-letter topic", ["reason", "source"])
ALERTS = Counter("onestop_alerts_total", "SLA alerts emitted", ["kind"])
_json = msgspec.json.Encoder()
STATE_TABLE = "dossier-state"


def changelog_topic(settings: Settings) -> str:
    """The state table's changelog topic, as Faust names it. Create it before a new app id's first start:
    Faust creates it itself, but a consumer that joins before the new topic reaches its metadata is
    assigned none of it, and the agent then fails on every record (PartitionsMismatch) until restarted."""
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


def _exit_without_acknowledging(exc: BaseException) -> None:
    """Kafka did not take a batch's alerts or states: end the process before its records are acknowledged."""
    log.critical("could not write a batch to Kafka (%s: %s); exiting so that a restart replays it",
                 type(exc).__name__, exc)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(70)


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


def create_app(settings: Settings, processor: Processor | None = None, *, store_url: str = "rocksdb://",
               outbox: Outbox | None = None, on_fatal: Callable[[BaseException], None] | None = None) -> faust.App:
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
    metrics = _raw_topic(app, settings.topic_metrics, settings)
    table = app.Table(STATE_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    state = TableState(table)
    outbox = outbox if outbox is not None else KafkaOutbox(settings.kafka_bootstrap, client_id=f"{settings.app_id}-outbox")
    fatal = on_fatal or _exit_without_acknowledging
    fresh = {"value": True}
    handled = {"records": 0}

    def actives() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.topic_events}

    @app.on_partitions_revoked.connect
    async def _revoked(sender: object, revoked: set, **kw: object) -> None:
        processor.forget({tp.partition for tp in revoked if tp.topic == settings.topic_events})
        fresh["value"] = True

    @app.on_partitions_assigned.connect
    async def _assigned(sender: object, assigned: set, **kw: object) -> None:
        fresh["value"] = True

    def process(batch: list[faust.EventT], held: BatchState) -> Effects:
        fx = Effects()
        wall = processor.clock.mode == "wall"
        for ev in batch:
            msg = ev.message
            view = held.view(msg.partition)
            try:
                if msg.topic == settings.topic_ticks:
                    processor.fire_due(msg.partition, view, fx)
                    continue
                if wall:
                    highwater = app.consumer.highwater(msg.tp)
                    processor.clock.set_lag(msg.partition, (highwater or 0) - msg.offset - 1)
                one = processor.on_event(msg.partition, msg.offset, msg.value, view)
            except Exception as exc:  # a defect, not bad input: keep the record, recount from the table
                log.exception("record %s:%s@%s could not be processed", msg.topic, msg.partition, msg.offset)
                fx.dead_letters.append(dlq.dead_letter(
                    msg.value or b"", "processing_error", f"{type(exc).__name__}: {exc}",
                    f"worker:{msg.topic}:{msg.partition}@{msg.offset}"))
                fresh["value"] = True
                continue
            (APPLIED if one.applied else DUPLICATE if one.duplicates else OTHER).inc()
            fx.alerts += one.alerts
            fx.dead_letters += one.dead_letters
        return fx

    async def persist(fx: Effects, held: BatchState) -> None:
        """Alerts and dead letters first, acknowledged; then the dossiers that remember them."""
        out = []
        for record in fx.dead_letters:
            DLQ.labels(record.reason_code, "worker").inc()
            out.append(OutRecord(settings.topic_dlq, record.dossier_id.encode() if record.dossier_id else None,
                                 dlq.encode(record)))
        for alert in fx.alerts:
            ALERTS.labels(alert.kind).inc()
            out.append(OutRecord(settings.topic_alerts, alert.dossier_id.encode(), encode_alert(alert)))
        await outbox.publish(out)
        changelog = [OutRecord(state.changelog, key, value, partition=p)
                     for p, items in held.writes.items() for key, value in items.items()]
        offsets = await outbox.publish(changelog)
        state.apply(held.writes, {p: offset for (_, p), offset in offsets.items()})

    @app.agent(source)
    async def fold_events(stream: faust.StreamT) -> None:
        await outbox.start()
        try:
            async for batch in stream.take_events(settings.worker_batch, within=settings.worker_batch_within_s):
                if fresh["value"]:
                    processor.rebuild((decode_stored(v) for v in table.values()), actives())
                    fresh["value"] = False
                held = BatchState(state)
                fx = process(batch, held)
                try:
                    await persist(fx, held)
                except Exception as exc:
                    # Their input records must not be acknowledged: leaving this loop would (take_events
                    # acknowledges a batch when it is left). Stop here; a restart replays the batch.
                    fatal(exc)
                    raise
                handled["records"] += len(batch)
        finally:
            await outbox.stop()

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
    app.onestop_handled = handled  # type: ignore[attr-defined]
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
