"""The Faust application: fold ``dossier.events`` into per-dossier state and a rolling backlog.

One agent consumes ``dossier.events`` (keyed by dossier_id). For each event it
decodes with msgspec, folds with the domain core, stores the new state in the
``dossier-state`` table (RocksDB, changelog-backed) and updates the in-memory
backlog counters. Bad input goes to ``dossier.dlq`` with its reason; the
stream goes on. A timer publishes the changed backlog counts to ``ioc.metrics``
(sending from a timer is fine; writing a table from one is not).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import faust
import msgspec

from onestop import dlq, events
from onestop.fold import DossierState, apply
from onestop.settings import Settings
from streams.backlog import BacklogCounters

log = logging.getLogger(__name__)

_stored = msgspec.msgpack.Decoder(tuple[int, DossierState])
_store = msgspec.msgpack.Encoder()
_json = msgspec.json.Encoder()


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.kafka_bootstrap.split(",")],
        store="rocksdb://",
        datadir=str(settings.home / "faust" / settings.app_id),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port or 6066,
        web_enabled=settings.web_port != 0,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        table_standby_replicas=0,
        broker_commit_every=2000,
        broker_commit_interval=1.0,
        key_serializer="raw",  # we encode with msgspec ourselves: cheaper than Faust's codecs
        value_serializer="raw",
    )
    src = app.topic(settings.topic_events, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    dlq_topic = app.topic(settings.topic_dlq, key_type=bytes, value_type=bytes,
                          key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    metrics_topic = app.topic(settings.topic_metrics, key_type=bytes, value_type=bytes,
                              key_serializer="raw", value_serializer="raw", partitions=settings.partitions)
    table = app.Table("dossier-state", partitions=settings.partitions, key_type=bytes, value_type=bytes)
    backlog = BacklogCounters()
    assigned: dict[str, object] = {"fresh": True}

    @app.on_partitions_revoked.connect
    async def _revoked(sender: object, revoked: set, **kw: object) -> None:
        backlog.forget(tp.partition for tp in revoked if tp.topic == settings.topic_events)
        assigned["fresh"] = True

    @app.on_partitions_assigned.connect
    async def _assigned(sender: object, assigned_tps: set, **kw: object) -> None:
        assigned["fresh"] = True

    def rebuild() -> None:
        actives = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == settings.topic_events}
        states = (_stored.decode(v) for v in table.values())
        backlog.rebuild(states, actives)
        assigned["fresh"] = False
        log.info("backlog rebuilt from state for partitions %s: %d open", sorted(actives),
                 sum(backlog.totals().values()))

    async def reject(raw: bytes, key: bytes | None, code: str, message: str, where: str, **ids: str | None) -> None:
        record = dlq.dead_letter(raw, code, message, f"worker:{where}", **ids)
        await dlq_topic.send(key=key, value=dlq.encode(record))

    @app.agent(src)
    async def fold_events(stream: faust.StreamT) -> None:
        async for ev in stream.events():
            if assigned["fresh"]:
                rebuild()
            msg = ev.message
            where = f"{msg.topic}:{msg.partition}@{msg.offset}"
            try:
                event = events.decode(ev.value)
            except events.ContractError as exc:
                await reject(ev.value, ev.key, exc.code, exc.message, where)
                continue
            key = event.dossier_id.encode()
            stored = table.get(key)
            before = _stored.decode(stored)[1] if stored is not None else None
            outcome = apply(before, event)
            for r in outcome.rejected:
                await reject(events.encode(r.event), key, r.code, r.message, where,
                             dossier_id=r.event.dossier_id, event_id=r.event.event_id)
            if outcome.state is not before and outcome.state != before:
                table[key] = _store.encode((msg.partition, outcome.state))
            backlog.observe(msg.partition, msg.offset, event.occurred_at, before, outcome.state)

    @app.timer(interval=1.0)
    async def publish_backlog() -> None:
        for snap in backlog.drain():
            key = f"{snap.commune_code}:{snap.source_partition}".encode()
            await metrics_topic.send(key=key, value=_json.encode(snap))

    app.onestop_backlog = backlog  # type: ignore[attr-defined]  # for tests and the web view
    return app


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    (settings.home / "faust" / settings.app_id).mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.execute_from_commandline()
