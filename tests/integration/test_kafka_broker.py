"""The local broker runner against a real Apache Kafka (KRaft) on 127.0.0.1."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from ops import broker
from ops.topics import create_topics, list_topics, pipeline_topics
from onestop.settings import Settings

pytestmark = pytest.mark.integration


def test_status_reports_running(kafka_settings: Settings) -> None:
    state = broker.status(kafka_settings)
    assert state.running
    assert state.pid is not None
    assert state.bootstrap == kafka_settings.kafka_bootstrap
    assert state.log_file.is_file()


def test_start_twice_reuses_the_running_broker(kafka_settings: Settings) -> None:
    first = broker.status(kafka_settings)
    again = broker.start(kafka_settings)
    assert again.reused
    assert again.pid == first.pid
    assert broker.BrokerPaths.of(kafka_settings).pid.read_text().strip() == str(first.pid)


def test_broker_listens_on_loopback_only(kafka_settings: Settings) -> None:
    config = broker.BrokerPaths.of(kafka_settings).config.read_text()
    listeners = next(line for line in config.splitlines() if line.startswith("listeners="))
    assert listeners == (f"listeners=PLAINTEXT://127.0.0.1:{kafka_settings.kafka_port},"
                         f"CONTROLLER://127.0.0.1:{kafka_settings.kafka_controller_port}")


def test_pipeline_topics_exist_with_the_configured_partitions(kafka_settings: Settings) -> None:
    topics = list_topics(kafka_settings)
    expected = pipeline_topics(kafka_settings)
    assert set(expected) == {"dossier.events", "dossier.dlq", "dossier.state", "ioc.metrics", "dossier.alerts",
                             "dossier.ticks"}
    assert {name: topics.get(name) for name in expected} == expected
    assert set(expected.values()) == {kafka_settings.partitions}


def test_state_topic_is_compacted(kafka_settings: Settings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.kafka_bootstrap)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, kafka_settings.topic_state)
        configs = admin.describe_configs([resource])["topic"][kafka_settings.topic_state]
    finally:
        admin.close()
    assert configs["cleanup.policy"]["value"] == "compact"


def test_create_topics_is_idempotent(kafka_settings: Settings) -> None:
    assert create_topics(kafka_settings) == pipeline_topics(kafka_settings)


def test_partition_count_mismatch_is_a_clear_error(kafka_settings: Settings) -> None:
    with pytest.raises(broker.BrokerError, match=r"dossier\.events has 12 partitions, expected 3"):
        create_topics(kafka_settings, {kafka_settings.topic_events: 3})


def test_auto_topic_creation_is_disabled(kafka_settings: Settings) -> None:
    name = f"typo-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.kafka_bootstrap)
    try:
        assert not consumer.partitions_for_topic(name)  # the client asks for auto-creation
    finally:
        consumer.close()
    assert name not in list_topics(kafka_settings)


def test_message_produced_with_acks_all_is_consumed_back(kafka_settings: Settings) -> None:
    key, value = b"42-0001", uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap, acks="all")
    try:
        sent = producer.send(kafka_settings.topic_events, key=key, value=value).get(timeout=30)
    finally:
        producer.close()
    partition = TopicPartition(kafka_settings.topic_events, sent.partition)
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        records = consumer.poll(timeout_ms=15_000, max_records=1).get(partition, [])
    finally:
        consumer.close()
    assert [(r.key, r.value, r.offset) for r in records] == [(key, value, sent.offset)]


def test_start_refuses_a_port_in_use(private_broker_settings: Settings) -> None:
    settings = private_broker_settings
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", settings.kafka_port))
        squatter.listen()
        with pytest.raises(broker.BrokerError, match="already in use"):
            broker.start(settings)
    assert not broker.BrokerPaths.of(settings).pid.exists()


def test_stop_then_status_is_not_running(private_broker_settings: Settings) -> None:
    settings = private_broker_settings  # a broker of its own: the session broker keeps running
    started = broker.start(settings)
    assert started.running and not started.reused
    try:
        assert broker.status(settings).running
    finally:
        assert broker.stop(settings)
    state = broker.status(settings)
    assert not state.running and state.pid is None
    assert not Path(f"/proc/{started.pid}").exists()
    assert not broker.BrokerPaths.of(settings).pid.exists()
    assert broker.stop(settings) is False
