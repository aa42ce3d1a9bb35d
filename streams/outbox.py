"""Everything the worker writes to Kafka for a batch of records, sent as whole record batches.

The worker produces three kinds of record per batch of input: alerts, dead
letters and the new state of every dossier it changed (the state table's
changelog). Sending them one by one through Faust's producer costs more CPU
than the rest of the worker together. ``KafkaOutbox`` owns one aiokafka
producer (acks=all, idempotent) and sends each (topic, partition) group as a
single record batch (``create_batch`` / ``send_batch``), then waits for the
acknowledgements. It returns the offset of the last record of each group, which
the state table needs to remember how far its changelog is applied.

``MemoryOutbox`` is the same interface without Kafka, for the agent's unit tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner, murmur2

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
MAX_BATCH_BYTES = 512 * 1024  # well under the broker's default message.max.bytes (1 MiB)


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None  # None: by key, as Kafka's default partitioner would


class Outbox(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, records: list[OutRecord]) -> dict[TopicPartition, int]:
        """Send ``records`` and wait until Kafka has acknowledged all of them (acks=all).

        Returns the offset of the last record written to each (topic, partition). Within a
        (topic, partition) the records keep their order."""
        ...

    async def publish_partitions(self, topic: str, writes: dict[int, dict[bytes, bytes]]) -> dict[int, int]:
        """``publish`` for records already grouped by partition (partition → key → value, in order).

        Returns the offset of the last record written to each partition."""
        ...


class KafkaOutbox:
    def __init__(self, bootstrap: str, *, client_id: str = "onestop-worker") -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[str, list[int]] = {}
        self._partitioner = DefaultPartitioner()

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all", enable_idempotence=True,
            max_batch_size=MAX_BATCH_BYTES, max_request_size=2 * MAX_BATCH_BYTES, linger_ms=0,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _partitions_of(self, topic: str) -> list[int]:
        parts = self._partitions.get(topic)
        if parts is None:
            assert self._producer is not None
            parts = self._partitions[topic] = sorted(await self._producer.partitions_for(topic))
        return parts

    async def publish(self, records: list[OutRecord]) -> dict[TopicPartition, int]:
        groups: dict[TopicPartition, list[tuple[bytes | None, bytes]]] = defaultdict(list)
        for r in records:
            p = r.partition
            if p is None:
                parts = await self._partitions_of(r.topic)
                p = self._partitioner(r.key, parts, parts)  # a record without a key: any partition
            groups[(r.topic, p)].append((r.key, r.value))
        return await self._send(groups)

    async def publish_partitions(self, topic: str, writes: dict[int, dict[bytes, bytes]]) -> dict[int, int]:
        last = await self._send({(topic, p): items.items() for p, items in writes.items() if items})
        return {p: offset for (_, p), offset in last.items()}

    async def _send(self, groups: dict[TopicPartition, Any]) -> dict[TopicPartition, int]:
        """One record batch per (topic, partition) (more if it outgrows MAX_BATCH_BYTES); wait for every ack."""
        if not groups:
            return {}
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        pending: list[tuple[TopicPartition, int, asyncio.Future]] = []
        for (topic, p), items in groups.items():
            batch = producer.create_batch()
            count = 0
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send, start another
                    pending.append(((topic, p), count, await producer.send_batch(batch, topic, partition=p)))
                    batch, count = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"record of {len(value)} bytes does not fit in a batch for {topic}")
                count += 1
            pending.append(((topic, p), count, await producer.send_batch(batch, topic, partition=p)))
        acked = await asyncio.gather(*(f for _, _, f in pending))
        last: dict[TopicPartition, int] = {}
        for (tp, count, _), meta in zip(pending, acked):
            last[tp] = max(last.get(tp, -1), meta.offset + count - 1)  # a batch's metadata carries its base offset
        return last


class MemoryOutbox:
    """Keeps what would be sent, with offsets per (topic, partition) as Kafka would give them."""

    def __init__(self, partitions: int = 12) -> None:
        self.partitions = partitions
        self.sent: list[OutRecord] = []
        self.calls: list[list[OutRecord]] = []  # one entry per publish
        self.next_offset: dict[TopicPartition, int] = defaultdict(int)
        self.fail_next: Exception | None = None  # the next publish raises this
        self.fatal: list[BaseException] = []  # for a test's on_fatal

    def records(self) -> list[tuple[str, bytes]]:
        return [(r.topic, r.value) for r in self.sent]

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish_partitions(self, topic: str, writes: dict[int, dict[bytes, bytes]]) -> dict[int, int]:
        records = [OutRecord(topic, key, value, partition=p) for p, items in writes.items() for key, value in items.items()]
        return {p: offset for (_, p), offset in (await self.publish(records)).items()}

    async def publish(self, records: list[OutRecord]) -> dict[TopicPartition, int]:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if records:
            self.calls.append(list(records))
        last: dict[TopicPartition, int] = {}
        for r in records:
            p = r.partition if r.partition is not None else (murmur2(r.key or b"") & 0x7FFFFFFF) % self.partitions
            tp = (r.topic, p)
            last[tp] = self.next_offset[tp]
            self.next_offset[tp] += 1
            self.sent.append(r)
        return last
