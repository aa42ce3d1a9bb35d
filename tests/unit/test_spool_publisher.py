"""The publisher without a reachable broker: everything goes to the spool and stays there."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path

import pytest

from onestop import dlq, events
from onestop.settings import Settings
from producers.publisher import Publisher, PublisherTimeout
from producers.settings import PublisherSettings
from producers.simulator import SimulationConfig, simulate


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on return: nothing listens there


@pytest.fixture
def offline(tmp_path: Path) -> tuple[Settings, PublisherSettings]:
    settings = Settings(home=tmp_path / "home", kafka_bootstrap=f"127.0.0.1:{dead_port()}")
    ps = PublisherSettings(spool_dir=tmp_path / "spool", connect_timeout_ms=300, retry_backoff_s=0.2,
                           retry_backoff_max_s=0.5, close_timeout_s=0.5)
    return settings, ps


EVENTS = list(simulate(SimulationConfig(communes=2, dossiers=10, seed=5, start=date(2026, 11, 2), days=5)))


def test_without_kafka_every_record_is_spooled_and_survives_a_restart(offline) -> None:
    settings, ps = offline
    with Publisher(settings, client_id="edge", publisher_settings=ps) as pub:
        assert pub.spooling
        pub.publish_many(EVENTS[:5])
        pub.publish(EVENTS[5])
        pub.dead_letter(dlq.dead_letter(b"{oops", "malformed_json", "bad", "test", dossier_id="D1"))
        stats = pub.stats
        assert (stats.published, stats.sent, stats.spooled, stats.spool_depth) == (7, 0, 7, 7)
        assert stats.dead_lettered == 1
        with pytest.raises(PublisherTimeout, match="7 in the spool"):
            pub.flush(timeout=0.3)
        pub.flush(timeout=1.0, durable_ok=True)  # durable on disk is enough for this caller
    again = Publisher(settings, client_id="edge", publisher_settings=ps)
    try:
        assert again.spooling and again.stats.spool_depth == 7
        entries = again.spool.read(10)
        assert [e.record.topic for e in entries] == [settings.topic_events] * 6 + [settings.topic_dlq]
        assert [events.decode(e.record.value) for e in entries[:6]] == EVENTS[:6]
        assert [e.record.key for e in entries[:6]] == [e.dossier_id.encode() for e in EVENTS[:6]]
    finally:
        again.close(timeout=0)


def test_each_client_id_has_its_own_spool(offline) -> None:
    settings, ps = offline
    with Publisher(settings, client_id="a", publisher_settings=ps) as a, \
            Publisher(settings, client_id="b/c", publisher_settings=ps) as b:
        a.publish(EVENTS[0])
        assert a.spool.directory != b.spool.directory
        assert b.spool.directory.name == "b_c"
        assert (a.stats.spool_depth, b.stats.spool_depth) == (1, 0)


def test_spool_metrics_are_exported(offline) -> None:
    from prometheus_client import REGISTRY

    settings, ps = offline
    with Publisher(settings, client_id="metrics-probe", publisher_settings=ps) as pub:
        pub.publish_many(EVENTS[:3])
        labels = {"client": "metrics-probe"}
        assert REGISTRY.get_sample_value("onestop_publisher_spooled_total", labels) == 3
        assert REGISTRY.get_sample_value("onestop_publisher_spool_depth", labels) == 3
        assert REGISTRY.get_sample_value("onestop_publisher_spooling", labels) == 1


def test_publishing_after_close_is_an_error(offline) -> None:
    settings, ps = offline
    pub = Publisher(settings, client_id="closed", publisher_settings=ps)
    pub.close(timeout=0)
    with pytest.raises(Exception, match="closed"):
        pub.publish(EVENTS[0])
