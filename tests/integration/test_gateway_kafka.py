"""The ingest gateway end to end: a real uvicorn server on loopback, the real Publisher, a real Kafka broker.

One batch mixes good, bad and repeated events. Afterwards dossier.events must
hold exactly the good events, once each, keyed by dossier_id, and dossier.dlq
the bad ones with their reasons. The end offsets are read right after the HTTP
answer: the gateway answers only once Kafka has acknowledged, so nothing is
waited for.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from kafka import KafkaConsumer, TopicPartition

from onestop import dlq, events
from ops import broker
from ops.topics import create_topics
from onestop.settings import Settings
from producers.gateway import create_app
from producers.gateway_settings import GatewaySettings
from producers.publisher import Publisher
from producers.tokens import hash_token

pytestmark = pytest.mark.integration

HOME, OTHER = "18073", "18100"
TOKEN = "it-gateway-token-" + uuid.uuid4().hex


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(settings: Settings, tokens: Path) -> Iterator[str]:
    """Base URL of a gateway served by uvicorn in a thread, publishing with the real Publisher."""
    port = free_port()
    gateway_settings = GatewaySettings(host="127.0.0.1", port=port, tokens_file=tokens, publish_timeout=60)
    with Publisher(settings, client_id=f"onestop-it-gateway-{port}") as publisher:
        app = create_app(settings, gateway_settings, publisher)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="gateway", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gateway") / "tokens.yaml"
    path.write_text(f'"{HOME}": "{hash_token(TOKEN)}"\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gateway(kafka_settings: Settings, tokens: Path) -> Iterator[str]:
    with serving(kafka_settings, tokens) as url:
        yield url


def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def read_between(settings: Settings, start: dict[TopicPartition, int], end: dict[TopicPartition, int]) -> list:
    """Every record from ``start`` up to (excluding) ``end``, per partition."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    records = []
    try:
        wanted = [tp for tp in end if end[tp] > start.get(tp, 0)]
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, start.get(tp, 0))
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end[tp] for tp in wanted):
            assert time.monotonic() < deadline, "records below the end offsets did not arrive"
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                records += [r for r in batch if r.offset < end[tp]]
    finally:
        consumer.close()
    return records


def event(run: str, dossier: str, seq: int, event_type: str = "submitted", **changes) -> dict:
    body = {"event_id": f"{run}-{dossier}-{seq}", "event_type": event_type, "dossier_id": f"{run}-{dossier}",
            "seq": seq, "occurred_at": f"2026-11-02T0{seq}:00:00+07:00", "commune_code": HOME,
            "procedure_code": "1.001193", "channel": 2}
    if event_type == "accepted":
        body["due_at"] = "2026-11-05T17:00:00+07:00"
    return {**body, **changes}


def test_good_events_arrive_once_keyed_by_dossier_and_bad_ones_are_dead_lettered(gateway, kafka_settings):
    run = uuid.uuid4().hex[:12]
    good = [event(run, "A", 1), event(run, "A", 2, "accepted"), event(run, "B", 1)]
    missing = {k: v for k, v in event(run, "C", 1).items() if k != "procedure_code"}
    forbidden = event(run, "D", 1, commune_code=OTHER)
    batch = [good[0], missing, good[1], good[0], forbidden, f"not an event {run}", good[2]]
    topics = (kafka_settings.topic_events, kafka_settings.topic_dlq)
    before = {t: end_offsets(kafka_settings, t) for t in topics}
    auth = {"Authorization": f"Bearer {TOKEN}"}

    with httpx.Client(base_url=gateway, headers=auth, timeout=60) as client:
        first = client.post("/v1/events", json=batch)
        retry = client.post("/v1/events", json=[good[2]])
        malformed = client.post("/v1/events", content=f"{{not json {run}".encode())
        unauthenticated = client.post("/v1/events", json=good, headers={"Authorization": "Bearer nope"})
    after = {t: end_offsets(kafka_settings, t) for t in topics}

    assert first.status_code == 207, first.text
    body = first.json()
    assert (body["accepted"], body["duplicates"]) == (3, 1)
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [
        (1, "missing_field"), (4, "forbidden_commune"), (5, "not_an_object")]
    assert retry.status_code == 200 and retry.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_json"
    assert unauthenticated.status_code == 401

    published = [r for r in read_between(kafka_settings, before[topics[0]], after[topics[0]])
                 if r.key and r.key.decode().startswith(run)]
    got = [(r.key.decode(), events.decode(r.value)) for r in published]
    assert sorted(e.event_id for _, e in got) == sorted(e["event_id"] for e in good)  # each exactly once
    assert all(key == e.dossier_id for key, e in got)
    assert {e.source for _, e in got} == {f"gateway:{HOME}"}
    dossier_a = [r for r in published if r.key.decode() == f"{run}-A"]
    assert len({r.partition for r in dossier_a}) == 1
    assert [events.decode(r.value).seq for r in sorted(dossier_a, key=lambda r: r.offset)] == [1, 2]

    dead = [(r.key, dlq.decode(r.value)) for r in read_between(kafka_settings, before[topics[1]], after[topics[1]])]
    mine = [(key, d) for key, d in dead if run.encode() in d.original]
    assert sorted(d.reason_code for _, d in mine) == sorted(
        ["missing_field", "forbidden_commune", "not_an_object", "malformed_json"])
    assert {d.source for _, d in mine} == {f"gateway:{HOME}"}
    by_code = {d.reason_code: (key, d) for key, d in mine}
    assert json.loads(by_code["missing_field"][1].original) == missing
    assert by_code["forbidden_commune"][0] == f"{run}-D".encode()
    assert by_code["forbidden_commune"][1].event_id == forbidden["event_id"]
    assert by_code["not_an_object"][1].original == json.dumps(f"not an event {run}").encode()
    assert by_code["malformed_json"][1].original == f"{{not json {run}".encode()


def test_events_accepted_while_kafka_is_down_arrive_once_it_is_back(private_broker_settings, tokens):
    """Accepted = acknowledged by Kafka or fsynced in the gateway's spool; the spool drains when Kafka returns."""
    settings = private_broker_settings  # a broker of its own, not started yet: Kafka is "down"
    run = uuid.uuid4().hex[:12]
    good = [event(run, "A", 1), event(run, "A", 2, "accepted"), event(run, "B", 1)]
    try:
        with serving(settings, tokens) as url:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=90) as client:
                during = client.post("/v1/events", json=good)
                retry = client.post("/v1/events", json=good)
                assert during.status_code == 200, during.text
                assert during.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
                assert retry.json() == {"accepted": 0, "duplicates": 3, "rejected": []}
                assert "onestop_publisher_spool_depth" in client.get("/metrics").text
                broker.start(settings)
                create_topics(settings)
                records = wait_for_records(settings, settings.topic_events, len(good), run)
    finally:
        broker.stop(settings)
    got = [(r.key.decode(), events.decode(r.value)) for r in records]
    assert sorted(e.event_id for _, e in got) == sorted(e["event_id"] for e in good)
    assert all(key == e.dossier_id for key, e in got)
    dossier_a = sorted((r for r in records if r.key.decode() == f"{run}-A"), key=lambda r: r.offset)
    assert [events.decode(r.value).seq for r in dossier_a] == [1, 2]


def wait_for_records(settings: Settings, topic: str, count: int, run: str, timeout: float = 90) -> list:
    """Records of this run from the beginning of ``topic``, once ``count`` arrived (and a little longer)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", group_id=None)
    records: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count:
            assert time.monotonic() < deadline, f"{len(records)} of {count} records arrived"
            for batch in consumer.poll(timeout_ms=1000).values():
                records += [r for r in batch if r.key and r.key.decode().startswith(run)]
        for batch in consumer.poll(timeout_ms=3000).values():  # nothing more may come: no duplicate
            records += [r for r in batch if r.key and r.key.decode().startswith(run)]
    finally:
        consumer.close()
    return records
