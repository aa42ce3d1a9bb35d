"""``onestop rebuild``: every derived table of the store, recreated from ``dossier.events``.

``dossier.events`` is kept forever and is the only source of truth, so every
table the pipeline derives from it can be recomputed: the raw events
(``dossier_events``, ``event_deliveries``, and through their materialized
views ``events_per_minute`` and ``events_per_day``), the dossiers, the
counters (backlog, throughput, on-time and the service practices) with their
epochs, and the alerts. ``dead_letters`` and ``communes`` do not come from
``dossier.events`` and are left as they are.

The rebuild bypasses Faust. It takes every partition's end offset when it
starts, splits the partitions into groups, and each group is read by a plain
consumer and folded by the worker's ``Processor`` (``ops.rebuild_worker``;
one child process per group when there are several). The derived tables are
truncated meanwhile, and the groups' rows are inserted as Arrow columns, each
insert with its deduplication token. Overdue is judged against event time, as
in a replay, so the same log gives the same tables on every run.

With the embedded store (chDB) the rebuild must own the store: it refuses to
start while a sink (or any other process) holds it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from onestop.settings import Settings
from ops.rebuild_worker import GroupResult, Output, Span, consumer_for, run_group
from sinks import history_schema, practice_schema, schema

log = logging.getLogger(__name__)

# Truncated, then filled again; the materialized views' targets are filled by inserts into dossier_events.
DERIVED_TABLES = (
    schema.EVENTS, practice_schema.DELIVERIES, history_schema.PER_MINUTE, history_schema.PER_DAY,
    history_schema.DOSSIERS, schema.BACKLOG_PARTS, schema.THROUGHPUT_PARTS, schema.ONTIME_PARTS,
    practice_schema.SAMEDAY_PARTS, practice_schema.SERVICE_PARTS, practice_schema.SATISFACTION_PARTS,
    schema.EPOCHS, schema.ALERTS,
)
KEPT_TABLES = (schema.DEAD_LETTERS, schema.COMMUNES)  # not derived from dossier.events
DEFAULT_CHUNK = 100_000


class RebuildError(RuntimeError):
    """The rebuild could not start, or stopped part-way (then the derived tables are incomplete: run it again)."""


@dataclass
class RebuildResult:
    records: int = 0  # records of dossier.events read
    seconds: float = 0.0  # from the start (the end offsets taken) to the last insert
    rows: dict[str, int] = field(default_factory=dict)  # table → rows inserted
    refused: int = 0  # records that break the contract or admission (the DLQ has them)
    failed: int = 0  # records the fold raised on
    unstorable: int = 0
    workers: int = 1

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def store_holder(settings: Settings) -> str | None:
    """Who holds the embedded store right now (a description), or None (free, or a server DSN)."""
    from sinks.readonly import chdb_path
    from sinks.store_owner import find_owner, holder_pid

    if not settings.effective_clickhouse_dsn.startswith("chdb://"):
        return None
    owner = find_owner(settings)
    if owner is not None:
        return f"pid {owner.pid}, which answers queries at {owner.url}"
    holder = holder_pid(chdb_path(settings.effective_clickhouse_dsn))
    return f"pid {holder}" if holder is not None else None


def plan_spans(settings: Settings) -> list[Span]:
    """Every partition of the events topic, from its first offset to its end offset now."""
    from kafka import TopicPartition

    consumer = consumer_for(settings, "onestop-rebuild-plan")
    try:
        partitions = consumer.partitions_for_topic(settings.topic_events)
        if not partitions:
            raise RebuildError(f"topic {settings.topic_events} does not exist on {settings.kafka_bootstrap}")
        tps = [TopicPartition(settings.topic_events, p) for p in sorted(partitions)]
        starts, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
    finally:
        consumer.close()
    return [Span(tp.partition, starts[tp], ends[tp]) for tp in tps]


def split(spans: list[Span], groups: int) -> list[list[Span]]:
    """``groups`` groups of partitions with about as many records each (largest first, to the lightest)."""
    out: list[list[Span]] = [[] for _ in range(max(1, min(groups, len(spans))))]
    load = [0] * len(out)
    for span in sorted(spans, key=lambda s: (-s.records, s.partition)):
        i = load.index(min(load))
        out[i].append(span)
        load[i] += span.records
    return [sorted(g, key=lambda s: s.partition) for g in out]


def default_workers(spans: list[Span]) -> int:
    return max(1, min(len(os.sched_getaffinity(0)), sum(1 for s in spans if s.records)))


def run_rebuild(settings: Settings, *, workers: int | None = None, chunk: int = DEFAULT_CHUNK,
                on_progress: Callable[[int, int], None] | None = None) -> RebuildResult:
    """Rebuild every derived table (see the module docstring); ``on_progress(done, total)`` as records are read."""
    holder = store_holder(settings)
    if holder is not None:
        raise RebuildError(f"the store {settings.effective_clickhouse_dsn} is held by {holder} (a running sink?): "
                           "stop the sink first; the rebuild needs the store to itself")
    started = time.perf_counter()
    settings = settings.model_copy(update={"clock": "event"})  # judged on event time, as a replay
    version = time.time_ns() // 1000  # the counters' version and epoch: older rows of a partition are void
    run = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    spans = plan_spans(settings)
    total = sum(s.records for s in spans)
    groups = split(spans, workers or default_workers(spans))
    result = RebuildResult(workers=len(groups))
    progress = on_progress or (lambda done, total: None)
    outputs: queue.Queue = queue.Queue(maxsize=16)
    # Children first: they are forked before this process opens the store or starts threads.
    children = _start_children(settings, groups, run, version, chunk, outputs) if len(groups) > 1 else []
    try:
        client = _open_store(settings)
        try:
            _truncate(client, settings.clickhouse_database)
            progress(0, total)
            writer = _Writer(client, settings.clickhouse_database, result, lambda n: progress(n, total))
            if children:
                _drain(outputs, children, writer, result)
            else:
                _merge(result, run_group(settings, groups[0], run, version, chunk, writer))
            result.seconds = time.perf_counter() - started
        finally:
            client.close()
    finally:
        _stop(children)
    return result


class _Writer:
    """Inserts what the groups hand over, and counts it."""

    def __init__(self, client: object, database: str, result: RebuildResult, progress: Callable[[int], None]) -> None:
        self.client, self.database, self.result, self.progress = client, database, result, progress
        self.done = 0

    def __call__(self, out: Output) -> None:
        from sinks.clickhouse import insert_arrow

        if out.table is not None and out.data is not None and out.data.num_rows:
            insert_arrow(self.client, f"{self.database}.{out.table}", out.data, token=out.token)
            self.result.rows[out.table] = self.result.rows.get(out.table, 0) + out.data.num_rows
        if out.records:
            self.done += out.records
            self.progress(self.done)


def _open_store(settings: Settings) -> object:
    from sinks import migrations
    from sinks.clickhouse import StoreError, connect, ensure_schema, query

    db = settings.clickhouse_database
    try:
        client = connect(settings, lock_wait_s=0)
        migrations.migrate(client, db)
        _, [(communes,)] = query(client, f"SELECT count() FROM {db}.{schema.COMMUNES}")
        if not communes:  # a store no sink has opened yet
            ensure_schema(client, db)
    except StoreError as exc:
        raise RebuildError(f"{exc} (is a sink running? stop the sink first)") from exc
    return client


def _truncate(client: object, database: str) -> None:
    from sinks.clickhouse import command

    for table in DERIVED_TABLES:
        command(client, f"TRUNCATE TABLE IF EXISTS {database}.{table}")


def _merge(result: RebuildResult, group: GroupResult) -> None:
    result.records += group.records
    result.refused += group.refused
    result.failed += group.failed
    result.unstorable += group.unstorable


# --- child processes --------------------------------------------------------------------------


def _child(settings: Settings, spans: list[Span], run: str, version: int, chunk: int, conn: object) -> None:
    from sinks.arrow_rows import to_ipc

    def emit(out: Output) -> None:
        conn.send(("out", out.table, out.token, None if out.data is None else to_ipc(out.data), out.records))

    try:
        result = run_group(settings, spans, run, version, chunk, emit)
        conn.send(("done", result))
    except BaseException:
        conn.send(("failed", traceback.format_exc()))
        raise
    finally:
        conn.close()


@dataclass
class _Child:
    process: multiprocessing.process.BaseProcess
    conn: object
    partitions: list[int]


def _start_children(settings: Settings, groups: list[list[Span]], run: str, version: int, chunk: int,
                    outputs: queue.Queue) -> list[_Child]:
    from sinks.arrow_rows import warm

    warm()  # imports made before the fork are made once
    context = multiprocessing.get_context("fork")
    children = []
    for spans in groups:
        parent_end, child_end = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(settings, spans, run, version, chunk, child_end),
                                  name=f"onestop-rebuild-{spans[0].partition}", daemon=True)
        process.start()
        child_end.close()
        children.append(_Child(process, parent_end, [s.partition for s in spans]))
    threading.Thread(target=_receive, args=(children, outputs), name="rebuild-receive", daemon=True).start()
    return children


def _receive(children: list[_Child], outputs: queue.Queue) -> None:
    """Move every child's messages to ``outputs`` (so a child never waits while the store inserts)."""
    from multiprocessing.connection import wait

    open_conns = {c.conn: c for c in children}
    while open_conns:
        for conn in wait(list(open_conns)):
            try:
                message = conn.recv()  # type: ignore[attr-defined]
            except EOFError:
                child = open_conns.pop(conn)
                outputs.put(("gone", child))
                continue
            outputs.put(message)


def _drain(outputs: queue.Queue, children: list[_Child], writer: _Writer, result: RebuildResult) -> None:
    from sinks.arrow_rows import from_ipc

    waiting = len(children)
    while waiting:
        kind, *rest = outputs.get()
        if kind == "out":
            table, token, raw, records = rest
            writer(Output(table, token, None if raw is None else from_ipc(raw), records))
        elif kind == "done":
            _merge(result, rest[0])
        elif kind == "failed":
            raise RebuildError(f"a partition group of the rebuild failed:\n{rest[0]}")
        elif kind == "gone":
            waiting -= 1
            child = rest[0]
            child.process.join(timeout=30)
            if child.process.exitcode not in (0, None):
                raise RebuildError(f"the rebuild of partitions {child.partitions} ended with exit code "
                                   f"{child.process.exitcode}")


def _stop(children: list[_Child]) -> None:
    for child in children:
        if child.process.is_alive():
            child.process.terminate()
    for child in children:
        child.process.join(timeout=10)
