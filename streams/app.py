"""The Faust application: per-dossier state, rolling backlog, throughput, on-time counts and SLA alerts.

One agent consumes ``dossier.events`` and ``dossier.ticks`` (co-partitioned,
keyed by dossier_id) in batches (``stream.noack_take``: up to
``worker_batch`` records, or what arrived within ``worker_batch_within_s``)
and hands each record to the ``Processor``. The ``dossier-state`` table
(RocksDB, changelog-backed) holds every dossier. It is only written by the
agent, at the end of a batch, never from a timer. A batch ends in this
order: its alerts, dead letters and the public state of every dossier it
changed (``dossier.state``, ``streams.published``) are acknowledged by Kafka, then the
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import faust
import msgspec
from faust.types import TP, Message
from prometheus_client import Counter, Gauge

from onestop import dlq
from onestop.settings import Settings
from streams import metrics as worker_metrics_module
from streams.build import build_processor  # noqa: F401  (streams.app.build_processor, as before)
from telemetry.shared import DLQ
from streams.model import decode_stored, encode_alert
from streams.outbox import KafkaOutbox, Outbox, OutRecord
from streams.processor import Effects, Processor
from streams.published import changed_records, encoded
from streams.refetch import read_range
from streams.state import OFFSET_KEY, BatchState, OffsetGuard, PartitionView, TableState

log = logging.getLogger(__name__)

EVENTS = Counter("onestop_worker_events_total", "Records handled by the worker", ["outcome"])
APPLIED, DUPLICATE, OTHER = (EVENTS.labels(o) for o in ("applied", "duplicate", "other"))
ALERTS = Counter("onestop_alerts_total", "SLA alerts emitted", ["kind"])
WAITING_FOR_SEQ = Gauge("onestop_worker_dossiers_waiting_for_seq",
                        "Dossiers whose later events wait for an earlier seq that has not arrived")
SEQ_GAPS_SKIPPED = Counter("onestop_worker_seq_gaps_skipped_total",
                           "Dossiers that stopped waiting for a missing seq after seq_gap_timeout_s")
_json = msgspec.json.Encoder()
STATE_TABLE = "dossier-state"


def changelog_topic(settings: Settings) -> str:
    """The state table's changelog topic, as Faust names it. Create it before a new app id's first start:
    Faust creates it itself, but a consumer that joins before the new topic reaches its metadata is
    assigned none of it, and the agent then fails on every record (PartitionsMismatch) until restarted."""
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


def _received_at(msg: object) -> datetime | None:
    """The record's Kafka timestamp (seconds), if it has one."""
    stamp = getattr(msg, "timestamp", None)
    return datetime.fromtimestamp(stamp, timezone.utc) if stamp and stamp > 0 else None


def _stored_offset(raw: bytes | None) -> int | None:
    return int(raw) if raw is not None else None


class ShortRefill(RuntimeError):
    """Records the consumer skipped could not all be read again: folding on would lose them."""

    def __init__(self, topic: str, partition: int, start: int, end: int, got: int) -> None:
        super().__init__(f"input {topic}[{partition}]: offsets {start}..{end - 1} were skipped by the consumer and "
                         f"only {got} of the {end - start} records could be read again; stopping instead of "
                         f"skipping them (were they deleted by retention?)")


def _exit_without_acknowledging(exc: BaseException) -> None:
    """Kafka did not take a batch's alerts or states, or skipped input could not be read again: end the
    process before the batch's records are acknowledged."""
    log.critical("stopping the worker without acknowledging the batch (%s: %s); a restart replays it",
                 type(exc).__name__, exc)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(70)


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
    WAITING_FOR_SEQ.set_function(processor.waiting_for_seq)
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

    def _tick_lag(partition: int) -> None:
        """How far the partition's input is behind, as a tick sees it (a restarted worker may get
        ticks before any input record: without this it would count as live and release held alerts)."""
        highwater = app.consumer.highwater(TP(settings.topic_events, partition))
        expected = guard.expected.get(partition)
        if highwater is not None and expected is not None:
            processor.clock.set_lag(partition, highwater - expected)

    def handle(msg: Message, view: PartitionView) -> Effects:
        """One input record or tick, through the processor (which applies all of it or none of it)."""
        wall = processor.clock.mode == "wall"
        if msg.topic == settings.topic_ticks:
            if wall:
                _tick_lag(msg.partition)
            return processor.on_tick(msg.partition, view)
        if wall:
            highwater = app.consumer.highwater(msg.tp)
            if highwater is not None:  # unknown right after an assignment: not a lag of 0
                processor.clock.set_lag(msg.partition, highwater - msg.offset - 1)
        one = processor.on_event(msg.partition, msg.offset, msg.value, view, received_at=_received_at(msg))
        (APPLIED if one.applied else DUPLICATE if one.duplicates else OTHER).inc()
        return one

    def process(batch: list[faust.EventT], held: BatchState) -> tuple[Effects, list[faust.EventT]]:
        """Fold ``batch`` into ``held``; returns the effects and the records to acknowledge once they are stored."""
        fx = Effects()
        done: list[faust.EventT] = []
        last: dict[int, int] = {}  # partition → last input offset folded in this batch
        for ev in batch:
            msg = ev.message
            done.append(ev)
            if msg.topic == settings.topic_events:
                if not guard.admit(msg.partition, msg.offset):
                    DUPLICATE.inc()  # the table already holds its effects (a redelivery)
                    continue
                last[msg.partition] = msg.offset
                observed.event(msg.partition, msg.offset, msg.value, msg.timestamp)
            try:
                one = handle(msg, held.view(msg.partition))
            except Exception as exc:  # a defect, not bad input: the processor dropped all the record did
                log.exception("record %s:%s@%s could not be processed", msg.topic, msg.partition, msg.offset)
                fx.dead_letters.append(dlq.dead_letter(
                    msg.value or b"", "processing_error", f"{type(exc).__name__}: {exc}",
                    f"worker:{msg.topic}:{msg.partition}@{msg.offset}"))
                continue
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
                if record.reason_code == "seq_gap_timeout" and record.source.endswith("@gap"):
                    SEQ_GAPS_SKIPPED.inc()
                out.append(OutRecord(settings.topic_dlq, record.dossier_id.encode() if record.dossier_id else None,
                                     dlq.encode(record)))
            for alert in fx.alerts:
                ALERTS.labels(alert.kind).inc()
                out.append(OutRecord(settings.topic_alerts, alert.dossier_id.encode(), encode_alert(alert)))
            for partition, key, value in encoded(changed_records(held.writes, processor.evaluator)):
                out.append(OutRecord(settings.topic_state, key, value, partition))
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
            if [r.message.offset for r in records] != list(range(start, end)):
                # Folding on past the hole would lose those records for good: stop, acknowledge nothing,
                # and let a restart (or an operator, if retention deleted them) settle it.
                fatal(ShortRefill(settings.topic_events, partition, start, end, len(records)))
                raise ShortRefill(settings.topic_events, partition, start, end, len(records))
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
    app.onestop_guard = guard  # type: ignore[attr-defined]
    app.onestop_fill_gaps = fill_gaps  # type: ignore[attr-defined]
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
