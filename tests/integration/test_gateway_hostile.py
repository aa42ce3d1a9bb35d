"""Hostile bodies against a real uvicorn gateway on loopback, one keep-alive connection, the real Kafka.

Every body gets a 4xx with its reason code and a dead letter on dossier.dlq,
and the connection that carried it still carries the next request: a valid
event sent last, on the same connection, is accepted.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from test_gateway_kafka import end_offsets, read_between, serving

from onestop import dlq
from producers.tokens import hash_token

pytestmark = pytest.mark.integration

HOME = "18073"
TOKEN = "it-hostile-token-" + uuid.uuid4().hex
RUN = uuid.uuid4().hex[:8]


def event(**changes) -> dict:
    return {"event_id": f"{RUN}-1", "event_type": "submitted", "dossier_id": f"H42.{HOME}-{RUN}", "seq": 1,
            "occurred_at": "2026-11-02T09:36:48+07:00", "commune_code": HOME, "procedure_code": "1.001193",
            "channel": 2, **changes}


def text(obj: dict, tail: bytes = b"") -> bytes:
    """JSON of ``obj``, with ``tail`` (raw JSON members) spliced in before the closing brace."""
    return json.dumps(obj).encode()[:-1] + tail + b"}"


HOSTILE = [
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, 400, "nesting_too_deep"),
    ("deep nesting in an extra field", text(event(), b', "x": ' + b"[" * 5000 + b"]" * 5000), 400, "nesting_too_deep"),
    ("huge seq", text(event(seq=0), b"").replace(b'"seq": 0', b'"seq": 1' + b"0" * 30), 422, "invalid_field"),
    ("huge number in an extra field", text(event(), b', "x": 1e999999'), 422, "invalid_field"),
    ("NUL byte in dossier_id", json.dumps(event(dossier_id="H42\x00X")).encode(), 422, "invalid_field"),
    ("raw NUL bytes", b"\x00" * 100, 400, "malformed_json"),
    ("lone surrogate", json.dumps(event()).encode().replace(b'"H42.', b'"\\ud800H42.'), 400, "malformed_json"),
    ("duplicate keys", text(event(), b', "seq": 7'), 422, "duplicate_key"),
    ("occurred in 2099", json.dumps(event(occurred_at="2099-01-01T00:00:00+07:00")).encode(), 422,
     "occurred_in_future"),
    ("due before acceptance", json.dumps(event(event_type="accepted", occurred_at="2026-11-03T09:00:00+07:00",
                                                due_at="2026-11-02T17:00:00+07:00")).encode(), 422,
     "due_before_acceptance"),
]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "tokens.yaml"
    path.write_text(f'"{HOME}": "{hash_token(TOKEN)}"\n', encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hostile_run(isolate, tokens):
    settings = isolate("hostile")
    before = end_offsets(settings, settings.topic_dlq)
    answers = []
    with serving(settings, tokens) as url:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, limits=limits,
                          timeout=30) as client:
            for name, body, _, _ in HOSTILE:
                response = client.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
                answers.append((name, response, response.extensions["network_stream"].get_extra_info("client_addr")))
            valid = client.post("/v1/events", json=event())
            answers.append(("valid", valid, valid.extensions["network_stream"].get_extra_info("client_addr")))
    after = end_offsets(settings, settings.topic_dlq)
    dead = [dlq.decode(r.value) for r in read_between(settings, before, after)]
    return answers, dead


def code_of(response: httpx.Response) -> str:
    body = response.json()
    return body["rejected"][0]["code"] if "rejected" in body else body["code"]


@pytest.mark.parametrize(("index", "name"), [(i, h[0]) for i, h in enumerate(HOSTILE)])
def test_each_hostile_body_gets_its_4xx_and_reason(hostile_run, index, name):
    answers, _ = hostile_run
    got_name, response, _ = answers[index]
    _, _, status, code = HOSTILE[index]
    assert got_name == name
    assert (response.status_code, code_of(response)) == (status, code), response.text


def test_each_hostile_body_is_dead_lettered_with_its_reason(hostile_run):
    _, dead = hostile_run
    assert sorted(d.reason_code for d in dead) == sorted(code for *_, code in HOSTILE)
    assert {d.source for d in dead} == {f"gateway:{HOME}"}


def test_one_connection_carried_every_request_and_still_takes_a_valid_event(hostile_run):
    answers, _ = hostile_run
    _, valid, _ = answers[-1]
    assert valid.status_code == 200 and valid.json()["accepted"] == 1
    assert len({addr for *_, addr in answers}) == 1  # the same client socket throughout: never reset
