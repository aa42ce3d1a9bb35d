"""A short-lived Kafka admin client on the local broker, and the error of every broker operation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


class BrokerError(RuntimeError):
    """The local broker could not be fetched, started, stopped or configured."""


@contextlib.contextmanager
def admin(port: int, timeout_s: float = 10.0) -> Iterator[Any]:
    """A kafka-python admin client on 127.0.0.1:``port``, closed on exit (imported lazily)."""
    from kafka import KafkaAdminClient

    client = KafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{port}",
        client_id="onestop-broker-runner",
        bootstrap_timeout_ms=int(timeout_s * 1000),
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        yield client
    finally:
        client.close()
