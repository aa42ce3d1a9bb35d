"""Read a range of input records again, outside Faust's consumer (see ``streams.state.OffsetGuard``)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

log = logging.getLogger(__name__)


class Refetched:
    """An input record read again: what the worker's batch loop reads of a Faust event."""

    __slots__ = ("message",)
    refetched = True

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                 timestamp: float | None = None) -> None:
        self.message = _Message(topic, partition, offset, key, value, timestamp)


class _Message:
    """What the batch loop, and Faust's ``Consumer.ack``, read of a message."""

    __slots__ = ("topic", "partition", "offset", "key", "value", "timestamp", "tp", "acked", "__weakref__")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                 timestamp: float | None = None) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = topic, partition, offset, key, value
        self.timestamp = timestamp  # seconds, as Faust's messages carry it: admission judges against it
        self.tp = TP(topic, partition)
        self.acked = False


async def read_range(bootstrap: str, topic: str, partition: int, start: int, end: int, *,
                     timeout_s: float = 30.0) -> list[Refetched]:
    """Records ``start`` ≤ offset < ``end`` of one partition (fewer if retention deleted some)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                client_id="onestop-worker-refetch")
    await consumer.start()
    out: list[Refetched] = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            got = await consumer.getmany(tp, timeout_ms=500, max_records=max(1, end - start))
            records = got.get(tp, [])
            out += [Refetched(topic, partition, r.offset, r.key, r.value, r.timestamp / 1000 if r.timestamp else None)
                    for r in records if r.offset < end]
            if any(r.offset >= end - 1 for r in records):
                break
            if not records and await consumer.position(tp) >= end:
                break
    finally:
        await consumer.stop()
    return out
