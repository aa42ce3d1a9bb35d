"""The ClickHouse sink never exits on a record: real Kafka, a real ``onestop sink`` process, chDB.

Records that were put on ``dossier.events`` behind the producers' back (as they
were before the contract bounded ``seq``) sit among valid events: the sink
dead-letters each with its coordinates, writes every valid event and keeps
running.
"""

import json
from datetime import date

import pytest
from kafka import KafkaProducer

from onestop import dlq
from ops.services import Services
from ops.lag import wait_caught_up
from producers.publisher import Publisher
from producers.simulator import SimulationConfig, simulate
from sinks.clickhouse import connect, query
from streams.readback import consume_topic

pytestmark = pytest.mark.integration

# The event of the report: accepted by the gateway of the time, then fatal to the sink (seq column UInt32).
HUGE_SEQ = {
    "event_id": "6d0f3c1e-8a4b-4f0e-9a57-3f1c2b7d9e99", "event_type": "submitted",
    "dossier_id": "H42.18073-261102-09999", "seq": 1000000000000000000000000000000,
    "occurred_at": "2026-11-02T09:36:48+07:00", "commune_code": "18073", "procedure_code": "1.001193",
    "channel": 2, "source": "gateway:18073",
}


def produce_raw(settings, value: bytes, key: bytes) -> tuple[int, int]:
    """One record straight onto dossier.events, with no check at all; its (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    try:
        meta = producer.send(settings.topic_events, key=key, value=value).get(timeout=30)
    finally:
        producer.close()
    return meta.partition, meta.offset


@pytest.fixture(scope="module")
def sink_run(isolate, tmp_path_factory):
    settings = isolate("sinkiso", home=tmp_path_factory.mktemp("sink-iso-home"), sink_group="it-sink-iso",
                        clickhouse_dsn="")
    evs = list(simulate(SimulationConfig(communes=3, dossiers=120, seed=909, start=date(2026, 11, 2), days=5)))
    half = len(evs) // 2
    services = Services(settings)
    try:
        services.start("sink", "sink")
        with Publisher(settings) as pub:
            pub.publish_many(evs[:half])
            pub.flush(timeout=60)
        poison = produce_raw(settings, json.dumps(HUGE_SEQ).encode(), HUGE_SEQ["dossier_id"].encode())
        with Publisher(settings) as pub:
            pub.publish_many(evs[half:])
            pub.flush(timeout=60)
        groups = {settings.sink_group: [settings.topic_events, settings.topic_dlq]}
        wait_caught_up(settings, groups, timeout=180, settle=3.0, on_poll=lambda _: services.check_alive())
        services.check_alive()  # still running after the poison record and everything behind it
        dead = [dlq.decode(v) for _, _, v in consume_topic(settings, settings.topic_dlq)]
    finally:
        services.stop_all()  # chDB allows one process per store: stop the sink before reading it
    client = connect(settings)
    yield settings, client, evs, poison, dead
    client.close()


def test_every_valid_event_arrives_in_clickhouse(sink_run):
    settings, client, evs, _, _ = sink_run
    _, rows = query(client, f"SELECT event_id FROM {settings.clickhouse_database}.dossier_events FINAL")
    assert sorted(r[0] for r in rows) == sorted(e.event_id for e in evs)


def test_the_poison_record_is_dead_lettered_with_its_kafka_coordinates(sink_run):
    settings, _, _, (partition, offset), dead = sink_run
    mine = [d for d in dead if d.source.startswith("sink:")]
    assert [(d.topic, d.partition, d.offset) for d in mine] == [(settings.topic_events, partition, offset)]
    letter = mine[0]
    assert letter.source == f"sink:{settings.topic_events}:{partition}@{offset}"
    assert (letter.reason_code, letter.event_id, letter.dossier_id) == (
        "invalid_field", HUGE_SEQ["event_id"], HUGE_SEQ["dossier_id"])
    assert json.loads(letter.original) == HUGE_SEQ and "seq" in letter.message


def test_the_sink_also_stores_its_own_dead_letter(sink_run):
    settings, client, _, (partition, offset), _ = sink_run
    _, rows = query(client, f"SELECT reason_code, source FROM {settings.clickhouse_database}.dead_letters FINAL")
    assert ("invalid_field", f"sink:{settings.topic_events}:{partition}@{offset}") in rows
