"""Property-based API testing of the gateway against its own served OpenAPI spec.

Schemathesis generates requests from /openapi.json (events that fit the schema,
and, in negative mode, bodies that do not) and sends them in-process to the
ASGI app with a valid bearer token. Whatever it sends, the gateway must answer
with something other than a 5xx. Kafka is the in-memory fake of the HTTP unit
tests; the examples are bounded so the run stays well under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from onestop.settings import Settings
from producers.gateway import create_app
from producers.gateway_settings import GatewaySettings
from producers.tokens import TokenStore, hash_token


class CountingPublisher:
    """In-memory stand-in for the Kafka Publisher: counts what would be sent."""

    def __init__(self) -> None:
        self.events = self.dead = 0

    def publish_raw(self, key: bytes | None, value: bytes) -> None:
        self.events += 1

    def dead_letter(self, record) -> None:
        self.dead += 1

    def flush(self, timeout: float | None = None, *, durable_ok: bool = False) -> None:
        pass

TOKEN = "schemathesis-token-" + "z" * 24
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 60

publisher = CountingPublisher()
app = create_app(Settings(), GatewaySettings(tokens_file=None, max_body_bytes=64 * 1024, max_batch_size=50),
                 publisher, tokens=TokenStore({"18073": hash_token(TOKEN)}))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
schema.config.generation.update(max_examples=MAX_EXAMPLES, modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                database="none")


@schema.parametrize()
@pytest.mark.timeout(60)
def test_no_request_makes_the_gateway_fail_with_a_5xx(case):
    case.call_and_validate(headers=HEADERS, checks=[not_a_server_error])


def test_the_spec_under_test_is_the_checked_in_one():
    checked_in = Path(__file__).resolve().parents[2] / "producers" / "openapi" / "gateway.v1.json"
    assert schema.raw_schema == json.loads(checked_in.read_text(encoding="utf-8"))
