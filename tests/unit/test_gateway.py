"""HTTP behaviour of the ingest gateway, with an in-memory publisher standing in for Kafka.

The real Publisher on a real broker is exercised in tests/integration/test_gateway_kafka.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kafka.errors import MessageSizeTooLargeError
from typer.testing import CliRunner

from onestop import dlq
from onestop.settings import Settings
from producers.dedup import RecentEvents, Seen
from producers.gateway import create_app, openapi_text
from producers.gateway_settings import GatewaySettings
from producers.tokens import TokenFileError, TokenStore, hash_token

ROOT = Path(__file__).resolve().parents[2]
TOKEN, OTHER_TOKEN = "token-of-18073-" + "x" * 20, "token-of-18100-" + "y" * 20
HOME, OTHER = "18073", "18100"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 4096


class FakePublisher:
    """Records what the gateway publishes, like producers.publisher.Publisher without Kafka.

    ``broken`` makes sends fail, ``stalled`` makes flush time out (Kafka and the spool both out of
    reach), and records larger than ``max_record`` are refused as Kafka would refuse them.
    """

    def __init__(self) -> None:
        self.events: list[tuple[bytes | None, bytes]] = []
        self.dead: list[dlq.DeadLetter] = []
        self.flushes: list[bool] = []  # durable_ok of each flush
        self.broken = self.stalled = False
        self.max_record = 1 << 20

    def _check(self, size: int) -> None:
        if self.broken:
            raise ConnectionError("broker down")
        if size > self.max_record:
            raise MessageSizeTooLargeError(f"record of {size} bytes exceeds {self.max_record}")

    def publish_raw(self, key: bytes | None, value: bytes) -> None:
        self._check(len(value))
        self.events.append((key, value))

    def dead_letter(self, record: dlq.DeadLetter) -> None:
        self._check(len(dlq.encode(record)))
        self.dead.append(dlq.decode(dlq.encode(record)))

    def flush(self, timeout: float | None = None, *, durable_ok: bool = False) -> None:
        if self.stalled:
            raise TimeoutError(f"nothing acknowledged within {timeout}s")
        self.flushes.append(durable_ok)


def event(**changes) -> dict:
    base = {"event_id": "ev-1", "event_type": "submitted", "dossier_id": "18073-D1", "seq": 1,
            "occurred_at": "2026-11-02T08:00:00+07:00", "commune_code": HOME, "procedure_code": "2.000815",
            "channel": 2}
    return {**base, **changes}


def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    bare = hashlib.sha256(OTHER_TOKEN.encode()).hexdigest()
    path.write_text(f'"{HOME}": "{hash_token(TOKEN)}"\n"{OTHER}": "{bare}"\n', encoding="utf-8")
    return path


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(tokens_file=tokens_file(tmp_path), max_body_bytes=LIMIT, max_batch_size=10)


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def client(gateway_settings: GatewaySettings, publisher: FakePublisher) -> TestClient:
    return TestClient(create_app(Settings(), gateway_settings, publisher))


def post(client: TestClient, body, headers=AUTH):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/events", content=content, headers={"Content-Type": "application/json", **headers})


def codes(response) -> list[tuple[int, str]]:
    return [(r["index"], r["code"]) for r in response.json()["rejected"]]


# --- authentication -------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": "Bearer "}])
def test_missing_or_unknown_token_is_401_and_nothing_is_published(client, publisher, headers):
    response = post(client, event(), headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert publisher.events == [] and publisher.dead == []


def test_unsalted_sha256_entry_authenticates_its_commune(client, publisher):
    response = post(client, event(commune_code=OTHER), {"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert response.status_code == 200, response.text


# --- accepted events ------------------------------------------------------------------------------

def test_one_event_is_published_keyed_by_dossier_id_with_the_gateway_as_source(client, publisher):
    response = post(client, event())
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    [(key, value)] = publisher.events
    assert key == b"18073-D1"
    published = json.loads(value)
    assert published["event_id"] == "ev-1" and published["source"] == f"gateway:{HOME}"
    assert publisher.flushes == [True]  # answered once acknowledged by Kafka or fsynced in the spool


def test_unknown_fields_of_newer_producers_are_passed_on(client, publisher):
    assert post(client, event(priority="high")).status_code == 200
    assert json.loads(publisher.events[0][1])["priority"] == "high"


def test_a_batch_keeps_its_order(client, publisher):
    batch = [event(event_id=f"ev-{i}", seq=i) for i in range(1, 4)]
    assert post(client, batch).json()["accepted"] == 3
    assert [json.loads(v)["seq"] for _, v in publisher.events] == [1, 2, 3]


# --- rejected events ------------------------------------------------------------------------------

def test_event_of_another_commune_is_403_forbidden_commune_and_dead_lettered(client, publisher):
    response = post(client, event(commune_code=OTHER))
    assert response.status_code == 403
    [rejected] = response.json()["rejected"]
    assert rejected["code"] == "forbidden_commune" and rejected["field"] == "commune_code"
    assert rejected["event_id"] == "ev-1" and rejected["status"] == 403
    assert publisher.events == []
    [record] = publisher.dead
    assert (record.reason_code, record.source, record.event_id) == ("forbidden_commune", f"gateway:{HOME}", "ev-1")


def test_partial_batch_is_207_with_a_reason_per_event(client, publisher):
    bad_type = event(event_id="ev-3", event_type="teleported")
    missing = {k: v for k, v in event(event_id="ev-2").items() if k != "dossier_id"}
    batch = [event(), missing, bad_type, event(event_id="ev-4", seq=0), 42, event(event_id="ev-6", commune_code=OTHER),
             event(event_id="ev-7", schema_version=2), event(event_id="ev-8", event_type="accepted")]
    response = post(client, batch)
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert codes(response) == [(1, "missing_field"), (2, "unknown_event_type"), (3, "invalid_field"),
                               (4, "not_an_object"), (5, "forbidden_commune"), (6, "unsupported_schema_version"),
                               (7, "missing_field")]
    fields = {r["index"]: r["field"] for r in body["rejected"]}
    assert fields == {1: "dossier_id", 2: "event_type", 3: "seq", 4: None, 5: "commune_code", 6: "schema_version",
                      7: "due_at"}
    assert all(r["message"] for r in body["rejected"])
    assert len(publisher.events) == 1
    assert [d.reason_code for d in publisher.dead] == [c for _, c in codes(response)]
    assert publisher.dead[1].original == json.dumps(bad_type).encode()
    assert publisher.dead[1].event_id == "ev-3" and publisher.dead[1].dossier_id == "18073-D1"


def test_batch_with_nothing_accepted_is_422(client, publisher):
    response = post(client, [event(seq="one"), event(event_id="")])
    assert response.status_code == 422
    assert codes(response) == [(0, "invalid_field"), (1, "invalid_field")]
    assert len(publisher.dead) == 2 and publisher.events == []


def test_invalid_utf8_inside_an_event_is_a_per_event_reason(client, publisher):
    response = post(client, b'[{"event_id": "\xff"}]')
    assert response.status_code == 422
    assert codes(response) == [(0, "malformed_json")]
    assert publisher.dead[0].original == b'{"event_id": "\xff"}'


# --- duplicates -----------------------------------------------------------------------------------

def test_repeated_event_id_is_a_duplicate_and_is_published_once(client, publisher):
    assert post(client, event()).json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    again = post(client, [event(), event(event_id="ev-2", seq=2), event(event_id="ev-2", seq=2)])
    assert again.status_code == 200
    assert again.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert [json.loads(v)["event_id"] for _, v in publisher.events] == ["ev-1", "ev-2"]


def test_event_id_reused_for_a_different_event_is_409_conflict(client, publisher):
    post(client, event())
    response = post(client, event(seq=2, event_type="accepted", due_at="2026-11-05T17:00:00+07:00"))
    assert response.status_code == 409
    assert codes(response) == [(0, "event_id_conflict")]
    assert len(publisher.events) == 1 and publisher.dead[0].reason_code == "event_id_conflict"


@pytest.mark.parametrize("failure", ["broken", "stalled"])
def test_kafka_failure_is_503_and_the_retry_is_not_taken_for_a_duplicate(client, publisher, failure):
    setattr(publisher, failure, True)
    response = post(client, [event(), event(event_id="ev-2", seq=2)])
    assert response.status_code == 503
    assert response.json()["code"] == "kafka_unavailable" and response.headers["Retry-After"]
    setattr(publisher, failure, False)
    assert post(client, [event(), event(event_id="ev-2", seq=2)]).json()["accepted"] == 2


def test_event_too_large_for_kafka_is_rejected_alone(client, publisher):
    publisher.max_record = 600
    response = post(client, [event(), event(event_id="ev-big", step="x" * 700)])
    assert response.status_code == 207
    assert codes(response) == [(1, "event_too_large")]
    assert response.json()["rejected"][0]["status"] == 413
    assert len(publisher.events) == 1
    assert publisher.dead == []  # its dead letter would be too large as well: logged, not sent
    publisher.max_record = 1 << 20
    assert post(client, event(event_id="ev-big", step="x" * 700)).json()["accepted"] == 1  # the id was not kept


def test_recent_event_ids_survive_a_restart(gateway_settings, publisher, tmp_path):
    settings = gateway_settings.model_copy(update={"dedup_file": tmp_path / "recent.json"})
    with TestClient(create_app(Settings(), settings, publisher)) as first:
        assert post(first, event()).json()["accepted"] == 1
    with TestClient(create_app(Settings(), settings, publisher)) as second:
        assert post(second, event()).json() == {"accepted": 0, "duplicates": 1, "rejected": []}


def test_recent_events_memory_is_bounded_least_recently_seen_first():
    recent = RecentEvents(2)
    assert [recent.claim(i, "d") for i in ("a", "b")] == [Seen.NEW, Seen.NEW]
    assert recent.claim("a", "d") is Seen.DUPLICATE  # "a" is now the most recent
    assert recent.claim("c", "d") is Seen.NEW  # evicts "b"
    assert recent.claim("b", "d") is Seen.NEW
    assert recent.claim("c", "other") is Seen.CONFLICT
    assert len(recent) == 2


# --- whole-request errors -------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2", b"\xef\xbb\xbf{}", b'{"a": 1} trailing'])
def test_unparsable_body_is_400_and_dead_lettered(client, publisher, body):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    [record] = publisher.dead
    assert record.original == body and record.reason_code == "malformed_json"
    assert publisher.events == []


def test_declared_body_too_large_is_413_before_reading_it(client, publisher):
    response = post(client, b" " * (LIMIT + 1) + json.dumps(event()).encode())
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert publisher.events == [] and publisher.dead == []


def test_streamed_body_too_large_is_413_without_content_length(client, publisher):
    def chunks():
        for _ in range(LIMIT // 512 + 2):
            yield b" " * 512

    response = client.post("/v1/events", content=chunks(), headers=AUTH)
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_bad_content_length_is_400():
    # httpx always sends a correct Content-Length, so call the reader directly.
    import asyncio

    from starlette.requests import Request

    from producers.gateway import GatewayError, read_body

    request = Request({"type": "http", "method": "POST", "headers": [(b"content-length", b"12x")]})
    with pytest.raises(GatewayError) as raised:
        asyncio.run(read_body(request, LIMIT))
    assert (raised.value.status, raised.value.code) == (400, "invalid_content_length")


def test_too_many_events_is_413_batch_too_large(client, publisher):
    response = post(client, [event(event_id=f"ev-{i}") for i in range(11)])
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert publisher.events == []


def test_empty_batch_is_a_no_op(client, publisher):
    assert post(client, []).json() == {"accepted": 0, "duplicates": 0, "rejected": []}


# --- operations -----------------------------------------------------------------------------------

def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_metrics_count_events_by_outcome(client):
    post(client, [event(), event(), event(event_id="ev-9", commune_code=OTHER)])
    text = client.get("/metrics").text
    assert 'onestop_gateway_events_total{outcome="accepted"} 1.0' in text
    assert 'onestop_gateway_events_total{outcome="duplicate"} 1.0' in text
    assert 'onestop_gateway_events_total{outcome="rejected"} 1.0' in text
    assert 'onestop_gateway_rejections_total{code="forbidden_commune"} 1.0' in text
    assert 'onestop_gateway_requests_total{status="207"} 1.0' in text


def test_served_openapi_equals_the_checked_in_spec(client):
    on_disk = json.loads((ROOT / "producers/openapi/gateway.v1.json").read_text(encoding="utf-8"))
    assert client.get("/openapi.json").json() == on_disk, "run `onestop gateway openapi` to regenerate it"
    assert openapi_text() == (ROOT / "producers/openapi/gateway.v1.json").read_text(encoding="utf-8")


def test_default_settings_bind_loopback(monkeypatch):
    for name in ("HOST", "PORT", "MAX_BODY_BYTES"):
        monkeypatch.delenv(f"ONESTOP_GATEWAY_{name}", raising=False)
    defaults = GatewaySettings()
    assert (defaults.host, defaults.port, defaults.max_body_bytes) == ("127.0.0.1", 8088, 1024 * 1024)


def test_app_refuses_to_start_without_a_tokens_file(publisher):
    with pytest.raises(TokenFileError):
        create_app(Settings(), GatewaySettings(tokens_file=None), publisher)


# --- tokens ---------------------------------------------------------------------------------------

def test_token_store_checks_salted_and_bare_hashes():
    store = TokenStore({HOME: hash_token("s3cret"), OTHER: hashlib.sha256(b"other").hexdigest()})
    assert store.authenticate("s3cret") == HOME
    assert store.authenticate("other") == OTHER
    assert store.authenticate("s3cret ") is None and store.authenticate("") is None
    assert store.authenticate(None) is None


def test_a_token_shared_by_two_communes_authenticates_nobody():
    assert TokenStore({HOME: hash_token("same"), OTHER: hash_token("same")}).authenticate("same") is None


@pytest.mark.parametrize("content", ["18073: sha256:zz\n", "4201: " + "a" * 64 + "\n", "- a\n- b\n", "01234: " + "a" * 64])
def test_token_file_with_a_bad_entry_is_refused(tmp_path, content):
    path = tmp_path / "tokens.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TokenFileError):
        TokenStore.from_file(path)


def test_token_file_may_be_json(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({HOME: hash_token("t")}), encoding="utf-8")
    assert TokenStore.from_file(path).authenticate("t") == HOME


def test_cli_hash_token_output_goes_straight_into_the_tokens_file(tmp_path):
    from onestop_cli import gateway as cli

    result = CliRunner().invoke(cli.app, ["hash-token", "--commune", HOME, "--stdin"], input="s3cret\n")
    assert result.exit_code == 0, result.output
    path = tmp_path / "tokens.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    assert TokenStore.from_file(path).authenticate("s3cret") == HOME


def test_cli_openapi_check_passes_on_the_checked_in_spec():
    from onestop_cli import gateway as cli

    result = CliRunner().invoke(cli.app, ["openapi", "--check"])
    assert result.exit_code == 0, result.output

