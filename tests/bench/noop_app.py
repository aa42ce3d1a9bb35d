"""A Faust agent that does nothing, on the same broker and topic as the worker: Faust's own floor.

Run as ``python -m tests.bench.noop_app`` by ``tests.bench.run``. It takes the
same ``ONESTOP_*`` settings as the worker (broker, topic, partitions, app id)
and mirrors the worker's consumer configuration (raw serializers, offsets
reset to earliest, commit every 2,000 records or 1 s) and its garbage-collector
thresholds (``worker_gc_threshold``), but it has no table (in-memory store), no web server, no timers and no
sends. So "no-op rate ÷ worker rate" is what our processing and the table
cost on top of Faust's per-record machinery. It reads with one
``stream.events()`` loop, the plainest agent there is; with
``BENCH_NOOP_MODE=batches`` it reads the way the worker does, in batches of
``worker_batch`` records (``stream.noack_take``, then one ack per record), and
does nothing with them.

Besides the consumer group's committed offsets (which ``tests.bench.run``
polls, exactly as for the worker), the agent writes its own wall-clock stamps
to ``$BENCH_STAMPS`` as JSON: the time of the first record, and of the
``$BENCH_EXPECT``-th record. They are a cross-check of the commit-based
figure: they do not depend on the commit interval.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import faust

from onestop.settings import Settings
from streams.app import apply_gc_threshold


def create_app(settings: Settings, expect: int, stamps: Path | None, batched: bool = False) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{s}" for s in settings.kafka_bootstrap.split(",")],
        store="memory://",
        datadir=str(settings.home / "faust" / settings.app_id),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        broker_commit_every=2000,  # as streams.app
        broker_commit_interval=1.0,
        key_serializer="raw",
        value_serializer="raw",
    )
    source = app.topic(settings.topic_events, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")

    def write(data: dict[str, object]) -> None:
        if stamps is not None:
            tmp = stamps.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(stamps)

    state = {"n": 0, "first": 0.0}

    def seen() -> None:
        state["n"] += 1
        n = state["n"]
        if n == 1:
            state["first"] = time.time()
            loop = type(asyncio.get_running_loop())
            write({"first": state["first"], "count": 1, "loop": f"{loop.__module__}.{loop.__name__}"})
        elif n == expect:
            loop = type(asyncio.get_running_loop())
            write({"first": state["first"], "last": time.time(), "count": n,
                   "loop": f"{loop.__module__}.{loop.__name__}"})

    if batched:
        @app.agent(source)
        async def noop_batches(stream: faust.StreamT) -> None:
            async for batch in stream.noack_take(settings.worker_batch, within=settings.worker_batch_within_s):
                for event in batch:
                    seen()
                for event in batch:
                    await stream.ack(event)
    else:
        @app.agent(source)
        async def noop(stream: faust.StreamT) -> None:
            async for _event in stream.events():
                seen()

    return app


def main() -> None:
    settings = Settings()
    apply_gc_threshold(settings)  # as the worker, so that the two differ only in what the agent does
    (settings.home / "faust" / settings.app_id).mkdir(parents=True, exist_ok=True)
    stamps = Path(os.environ["BENCH_STAMPS"]) if os.environ.get("BENCH_STAMPS") else None
    app = create_app(settings, int(os.environ.get("BENCH_EXPECT", "0")), stamps,
                     batched=os.environ.get("BENCH_NOOP_MODE", "events") == "batches")
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
