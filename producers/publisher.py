"""The one Kafka publisher every producer uses: kafka-python, acks=all, idempotent, keyed by dossier_id."""

from __future__ import annotations

import logging
from typing import Iterable

from kafka import KafkaProducer

from onestop import dlq, events
from onestop.settings import Settings

log = logging.getLogger(__name__)


class Publisher:
    """Publishes dossier events and dead letters.

    Per-dossier order holds because every event of a dossier has the same key
    (hence the same partition) and the idempotent producer keeps order on retry.
    """

    def __init__(self, settings: Settings, *, client_id: str = "onestop-producer") -> None:
        self.settings = settings
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            batch_size=256 * 1024,
            compression_type=None,
            max_in_flight_requests_per_connection=5,
        )
        self.sent = 0

    def publish(self, event: events.DossierEvent) -> None:
        self._producer.send(
            self.settings.topic_events, key=event.dossier_id.encode(), value=events.encode(event)
        )
        self.sent += 1

    def publish_raw(self, key: bytes | None, value: bytes) -> None:
        """Forward bytes as received (the gateway and importer validate first)."""
        self._producer.send(self.settings.topic_events, key=key, value=value)
        self.sent += 1

    def publish_many(self, batch: Iterable[events.DossierEvent]) -> int:
        n = 0
        for event in batch:
            self.publish(event)
            n += 1
        return n

    def dead_letter(self, record: dlq.DeadLetter) -> None:
        key = record.dossier_id.encode() if record.dossier_id else None
        self._producer.send(self.settings.topic_dlq, key=key, value=dlq.encode(record))

    def flush(self, timeout: float | None = 60.0) -> None:
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
