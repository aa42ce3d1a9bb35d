"""The Faust application: per-dossier state, rolling backlog, throughput, on-time counts and SLA alerts.

One agent consumes ``dossier.events`` and ``dossier.ticks`` (co-partitioned,
keyed by dossier_id) in batches (``stream.noack_take``: up to
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

import gc
import logging
import os
import sys
import time
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
from streams import metrics as worker_metrics_module
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored, encode_alert
from streams.outbox import KafkaOutbox, Outbox, OutRecord
from streams.processor import Effects, Processor
from streams.refetch import read_range
from streams.state import OFFSET_KEY, BatchState, OffsetGuard, TableState

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


def _stored_offset(raw: bytes | None) -> int | None:
    return int(raw) if raw is not None else None


def _exit_without_acknowledging(exc: BaseException) -> None:
    """Kafka did not take a batch's alerts or states: end the process before its records are acknowledged."""
    log.critical("could not write a batch to Kafka (%s: %s); exiting so that a restart replays it",
                 type(exc).__name__, exc)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(70)


def build_processor(settings: Settings) -> Processor:
    policy = SlaPolicy(due_soon_within=settings.due_soon_hours, boundary=settings.sla_boundary)
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
    observed = worker_metrics_module.install(app, settings, processor)
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
    guard = OffsetGuard()

    def actives() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.topic_events}

    @app.on_partitions_revoked.connect
    async def _revoked(sender: object, revoked: set, **kw: object) -> None:
        processor.forget({tp.partition for tp in revoked if tp.topic == settings.topic_events})
        fresh["value"] = True

    @app.on_partitions_assigned.connect
    async def _assigned(sender: object, assigned: set, **kw: object) -> None:
        fresh["value"] = True

    def process(batch: list[faust.EventT], held: BatchState) -> tuple[Effects, list[faust.EventT]]:
        """Fold ``batch`` into ``held``; returns the effects and the records to acknowledge once they are stored."""
        fx = Effects()
        done: list[faust.EventT] = []
        last: dict[int, int] = {}  # partition → last input offset folded in this batch
        wall = processor.clock.mode == "wall"
        for ev in batch:
            msg = ev.message
            view = held.view(msg.partition)
            done.append(ev)
            if msg.topic == settings.topic_events:
                if not guard.admit(msg.partition, msg.offset):
                    DUPLICATE.inc()  # the table already holds its effects (a redelivery)
                    continue
                last[msg.partition] = msg.offset
                observed.event(msg.partition, msg.offset, msg.value, msg.timestamp)
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
        for partition, offset in last.items():  # stored with the states it produced, in the same batch
            held.view(partition).set(OFFSET_KEY, str(offset).encode())
        return fx, done

    async def persist(fx: Effects, held: BatchState, done: list[faust.EventT], stream: faust.StreamT) -> None:
        """Alerts and dead letters first, acknowledged; then the dossiers that remember them; then RocksDB;
        then the input records."""
        try:
            out = []
            for record in fx.dead_letters:
                DLQ.labels(record.reason_code, "worker").inc()
                out.append(OutRecord(settings.topic_dlq, record.dossier_id.encode() if record.dossier_id else None,
                                     dlq.encode(record)))
            for alert in fx.alerts:
                ALERTS.labels(alert.kind).inc()
                out.append(OutRecord(settings.topic_alerts, alert.dossier_id.encode(), encode_alert(alert)))
            await outbox.publish(out)
            state.apply(held.writes, await outbox.publish_partitions(state.changelog, held.writes))
        except Exception as exc:
            # The batch's records stay unacknowledged, and no later batch may be acknowledged before
            # them: stop here. A restart replays from the last committed offsets.
            fatal(exc)
            raise
        for ev in done:
            if getattr(ev, "refetched", False):
                # Faust's consumer never handed this record out, but it may still count it as missing:
                # mark its offset done, or the partition's commits stop short of it for good.
                app.consumer.ack(ev.message)
            else:
                await stream.ack(ev)
                handled["records"] += 1

    async def fill_gaps(batch: list) -> list:
        """The batch, with input records the consumer skipped (see OffsetGuard) read again and put in place."""
        gaps = guard.gaps((ev.message.partition, ev.message.offset) for ev in batch
                          if ev.message.topic == settings.topic_events)
        if not gaps:
            return batch
        before: dict[tuple[int, int], list] = {}
        for partition, start, end in gaps:
            log.warning("input %s[%d]: offsets %d..%d were skipped by the consumer (a rebalance); reading them again",
                        settings.topic_events, partition, start, end - 1)
            records = await read_range(settings.kafka_bootstrap, settings.topic_events, partition, start, end)
            if len(records) < end - start:
                log.error("input %s[%d]: only %d of the %d skipped records could be read again",
                          settings.topic_events, partition, len(records), end - start)
            guard.filled += len(records)
            before[(partition, end)] = records
        out: list = []
        for ev in batch:
            msg = ev.message
            if msg.topic == settings.topic_events:
                out += before.pop((msg.partition, msg.offset), ())
            out.append(ev)
        return out

    @app.agent(source)
    async def fold_events(stream: faust.StreamT) -> None:
        await outbox.start()
        try:
            # noack_take: a batch's records are acknowledged by persist(), after everything they caused is
            # in Kafka and RocksDB, and never when the loop is left half-way (a cancel at shutdown, an error).
            async for batch in stream.noack_take(settings.worker_batch, within=settings.worker_batch_within_s):
                if fresh["value"]:
                    owned = actives()
                    processor.rebuild(observed.seen_stored(
                        decode_stored(v) for k, v in table.items() if not k.startswith(b"\x00")), owned)
                    guard.reset({p: _stored_offset(state.get(p, OFFSET_KEY)) for p in owned})
                    fresh["value"] = False
                started, held = time.perf_counter(), BatchState(state)
                fx, done = process(await fill_gaps(batch), held)
                await persist(fx, held, done, stream)
                observed.batch_done(started, fx, sum(map(len, held.writes.values())), batch[-1].message.timestamp)
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


def apply_gc_threshold(settings: Settings) -> None:
    if settings.worker_gc_threshold:
        gc.set_threshold(*(int(x) for x in settings.worker_gc_threshold.split(",")))


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    apply_gc_threshold(settings)
    Path(settings.home / "faust" / settings.app_id).mkdir(parents=True, exist_ok=True)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.web_host)
        worker_metrics_module.register_working_time(settings)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
