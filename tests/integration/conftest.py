"""Fixtures that run real servers on loopback: one Kafka broker for the whole test session."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ops import broker, topics
from onestop.settings import Settings


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that nothing listens on right now."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def broker_settings(home: Path) -> Settings:
    """Settings of a private broker: its own home and free ports, the shared jar cache."""
    port, controller_port = free_ports(2)
    return Settings(
        home=home,
        kafka_port=port,
        kafka_controller_port=controller_port,
        kafka_bootstrap=f"127.0.0.1:{port}",
    )


@pytest.fixture
def private_broker_settings(tmp_path: Path) -> Settings:
    """Settings for a second, short-lived broker that a test starts and stops itself."""
    return broker_settings(tmp_path)


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A running broker with the pipeline topics; stopped when the session ends."""
    settings = broker_settings(tmp_path_factory.mktemp("onestop-home"))
    try:
        broker.start(settings)
        topics.create_topics(settings)
        yield settings
    finally:
        broker.stop(settings)


def isolated(settings: Settings, name: str, **overrides: object) -> Settings:
    """Settings whose pipeline topics are this test's own, on the shared broker, created explicitly.

    Tests that check totals must not see what other tests published to the default topics.
    """
    names = {f: f"{getattr(settings, f)}.{name}" for f in
             ("topic_events", "topic_dlq", "topic_state", "topic_metrics", "topic_alerts", "topic_ticks")}
    isolated_settings = settings.model_copy(update={**names, **overrides})
    topics.create_topics(isolated_settings)
    return isolated_settings


@pytest.fixture(scope="session")
def isolate(kafka_settings: Settings):
    """``isolate(name, **overrides)``: settings with this test's own topics on the shared broker."""
    return lambda name, **overrides: isolated(kafka_settings, name, **overrides)
