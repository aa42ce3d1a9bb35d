"""The records a sink refused, sent to ``dossier.dlq`` before the sink commits past them.

Each refused record (``sinks.isolate.Refused``) becomes a dead letter with its
reason code, the original bytes and its Kafka coordinates (``topic``,
``partition``, ``offset``; ``source = sink:<topic>:<partition>@<offset>``).
``flush`` waits until Kafka has acknowledged them all: only then may the sink
commit the offsets, so a refused record is never lost, only moved aside.

A record of the dead-letter topic itself that cannot be stored is not sent
there again (that could loop for ever): it stays where it is, and is logged
and counted in ``onestop_sink_skipped_total``.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import msgspec
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError
from prometheus_client import Counter

from onestop import dlq
from onestop.settings import Settings
from sinks.isolate import Refused
from telemetry.shared import DLQ

log = logging.getLogger(__name__)

SKIPPED = Counter("onestop_sink_skipped_total", "Records the sink could neither store nor dead-letter", ["topic"])


class _Ids(msgspec.Struct):
    dossier_id: Any = None
    event_id: Any = None


_ids = msgspec.json.Decoder(_Ids)


def _ids_of(value: bytes) -> tuple[str | None, str | None]:
    try:
        found = _ids.decode(value)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return None, None
    return tuple(v if isinstance(v, str) and v else None for v in (found.dossier_id, found.event_id))  # type: ignore[return-value]


def dead_letter_of(refused: Refused) -> dlq.DeadLetter:
    dossier_id, event_id = _ids_of(refused.value)
    return dlq.dead_letter(refused.value, refused.code, refused.message,
                           f"sink:{refused.topic}:{refused.partition}@{refused.offset}",
                           dossier_id=dossier_id, event_id=event_id,
                           topic=refused.topic, partition=refused.partition, offset=refused.offset)


class SinkDeadLetters:
    """Dead-letters refused records through a Kafka producer of its own (made on first use)."""

    def __init__(self, settings: Settings, producer: Any = None) -> None:
        self.settings = settings
        self.topic = settings.topic_dlq
        self._producer = producer
        self._futures: list = []

    def send(self, refused: Iterable[Refused]) -> None:
        for r in refused:
            if r.topic == self.topic:
                SKIPPED.labels(r.topic).inc()
                log.error("%s[%d]@%d: a dead letter that cannot be stored (%s: %s); left in place",
                          r.topic, r.partition, r.offset, r.code, r.message)
                continue
            record = dead_letter_of(r)
            try:
                self._send(record)
            except MessageSizeTooLargeError:  # base64 makes it a third larger: point at the original instead
                self._send(msgspec.structs.replace(record, original_b64="", message=record.message +
                                                   " (the original is too large to copy here: read it at the"
                                                   " topic, partition and offset of this dead letter)"))
            DLQ.labels(r.code, "sink").inc()

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until Kafka acknowledged every dead letter sent; raise if it refused one."""
        if not self._futures:
            return
        self._producer.flush(timeout=timeout)
        futures, self._futures = self._futures, []
        for future in futures:
            future.get(timeout=timeout)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()

    def _send(self, record: dlq.DeadLetter) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap.split(","), acks="all",
                                           client_id="onestop-sink-dlq", linger_ms=5, retries=5)
        key = record.dossier_id.encode() if record.dossier_id else None
        self._futures.append(self._producer.send(self.topic, key=key, value=dlq.encode(record)))
