"""The ingest gateway: an HTTP API through which commune one-stop systems send contract-v1 events.

``POST /v1/events`` takes one event (a JSON object) or a batch (a JSON array).
Every commune system authenticates with its own bearer token and may only send
events of its own commune. Each event is judged on its own (see
``producers.ingest``): good ones go to ``dossier.events`` keyed by
``dossier_id``, bad ones to ``dossier.dlq`` and into the answer with a
machine-readable reason, repeats are counted as duplicates. docs/gateway.md
describes the status and error codes.

``create_app`` takes the publisher as an argument: the CLI passes the real
Kafka ``Publisher``, HTTP unit tests an in-memory fake.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import msgspec
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from onestop import events
from onestop.admission import rules_from
from onestop.catalogue import load_catalogue
from onestop.settings import Settings
from producers.dedup import RecentEvents
from producers.gateway_settings import GatewaySettings
from producers.ingest import EventPublisher, Ingestor, Outcome, PublishError
from producers.metrics import GatewayExtras
from producers.tokens import TokenFileError, TokenStore

log = logging.getLogger(__name__)

API_TITLE = "onestop-ioc ingest gateway"
API_VERSION = "1"
API_DESCRIPTION = ("Commune one-stop systems send contract-v1 dossier lifecycle events; accepted events go to "
                   "Kafka `dossier.events` keyed by `dossier_id`, rejected ones to `dossier.dlq`. See docs/gateway.md.")
OUTCOMES = ("accepted", "duplicate", "rejected")
BODY_DEAD_LETTERED = ("malformed_json", "nesting_too_deep")  # bodies refused whole, from an authenticated sender
_array = msgspec.json.Decoder(list[msgspec.Raw])
_value = msgspec.json.Decoder(msgspec.Raw)


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in the batch (0 for a single object).")
    code: str = Field(description="Machine-readable reason: missing_field, invalid_field, unknown_event_type, "
                      "unsupported_schema_version, not_an_object, malformed_json, nesting_too_deep, duplicate_key, "
                      "occurred_in_future, occurred_before_floor, due_before_acceptance, unknown_procedure, "
                      "forbidden_commune, event_id_conflict, event_too_large.")
    message: str = Field(description="What is wrong, for people.")
    field: str | None = Field(None, description="The offending field, when there is one.")
    event_id: str | None = Field(None, description="The event's event_id, when it could be read.")
    status: int = Field(description="HTTP status this event alone would get: 403, 409, 413 or 422.")


class IngestResult(BaseModel):
    accepted: int = Field(description="Events published to dossier.events by this request.")
    duplicates: int = Field(description="Events whose event_id was already accepted; not published again.")
    rejected: list[RejectedEvent] = Field(description="Events refused (each also sent to dossier.dlq).")


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable: unauthorized, malformed_json, nesting_too_deep, body_too_large, "
                      "batch_too_large, invalid_content_length, kafka_unavailable, not_found, ...")
    message: str


class GatewayError(Exception):
    """A request refused as a whole."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class Metrics:
    """prometheus-client counters in the app's own registry (several apps may live in one test process)."""

    def __init__(self, default_province: str = "42") -> None:
        self.registry = CollectorRegistry()
        self.extras = GatewayExtras(self.registry, default_province)  # latency, last event per commune
        self.events = Counter("onestop_gateway_events", "Events received by the gateway, by outcome.",
                              ["outcome"], registry=self.registry)
        self.rejections = Counter("onestop_gateway_rejections", "Rejected events, by reason code.",
                                  ["code"], registry=self.registry)
        self.requests = Counter("onestop_gateway_requests", "POST /v1/events answers, by HTTP status.",
                                ["status"], registry=self.registry)
        for outcome in OUTCOMES:
            self.events.labels(outcome=outcome)

    def count(self, outcome: Outcome) -> None:
        self.events.labels(outcome="accepted").inc(outcome.accepted)
        self.events.labels(outcome="duplicate").inc(outcome.duplicates)
        self.events.labels(outcome="rejected").inc(len(outcome.rejected))
        for rejection in outcome.rejected:
            self.rejections.labels(code=rejection.code).inc()


def status_of(outcome: Outcome) -> int:
    """200 all taken; 207 some taken, some rejected; nothing taken: the events' common status, else 422."""
    if not outcome.rejected:
        return 200
    if outcome.accepted or outcome.duplicates:
        return 207
    statuses = {r.status for r in outcome.rejected}
    return statuses.pop() if len(statuses) == 1 else 422


def split_body(body: bytes, max_batch: int) -> list[bytes]:
    """The raw JSON of each event: the array's elements, or the body itself for a single value."""
    try:
        if body.lstrip()[:1] == b"[":
            items = [bytes(item) for item in _array.decode(body)]
        else:
            items = [bytes(_value.decode(body))]
    except msgspec.DecodeError as exc:
        raise GatewayError(400, "malformed_json", f"the body is not JSON: {exc}") from None
    except RecursionError:  # msgspec follows nesting on the stack; such a body is no batch of events
        raise GatewayError(400, "nesting_too_deep", "the body nests arrays or objects deeper than JSON "
                           f"events ever do (at most {events.MAX_NESTING} levels per event)") from None
    if len(items) > max_batch:
        raise GatewayError(413, "batch_too_large", f"{len(items)} events in one request; at most {max_batch}")
    return items


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as Content-Length or the bytes actually streamed exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise GatewayError(400, "invalid_content_length", f"Content-Length {declared!r} is not a byte count")
        if int(declared) > limit:
            raise GatewayError(413, "body_too_large", f"body of {declared} bytes; at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, "body_too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_response(metrics: Metrics, exc: GatewayError) -> JSONResponse:
    metrics.requests.labels(status=str(exc.status)).inc()
    return JSONResponse({"code": exc.code, "message": exc.message}, exc.status, headers=exc.headers)


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(401, "unauthorized", message,
                        {"WWW-Authenticate": 'Bearer realm="onestop-gateway", error="invalid_token"'})


def _authenticate(tokens: TokenStore, credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise _unauthorized("send 'Authorization: Bearer <token of your commune>'")
    commune = tokens.authenticate(credentials.credentials)
    if commune is None:
        raise _unauthorized("unknown bearer token")
    return commune


EXAMPLE_EVENT = {
    "event_id": "6d0f3c1e-8a4b-4f0e-9a57-3f1c2b7d9e01", "event_type": "submitted",
    "dossier_id": "H42.18073-261102-00001", "seq": 1, "occurred_at": "2026-11-02T09:36:48+07:00",
    "commune_code": "18073", "procedure_code": "1.001193", "channel": 2,
}
EXAMPLE_BATCH = [EXAMPLE_EVENT, {
    **EXAMPLE_EVENT, "event_id": "2b9e6f4a-1c3d-4e5f-8a7b-9c0d1e2f3a4b", "event_type": "accepted", "seq": 2,
    "occurred_at": "2026-11-02T10:49:48+07:00", "due_at": "2026-11-05T17:00:00+07:00",
}]


def _request_body_spec() -> dict[str, Any]:
    event = {"$ref": "#/components/schemas/DossierEvent"}
    schema = {"oneOf": [event, {"type": "array", "items": event}]}
    examples = {"event": {"summary": "One event", "value": EXAMPLE_EVENT},
                "batch": {"summary": "A batch", "value": EXAMPLE_BATCH}}
    return {"requestBody": {
        "required": True,
        "description": "One contract-v1 event, or an array of them (at most ONESTOP_GATEWAY_MAX_BATCH_SIZE).",
        "content": {"application/json": {"schema": schema, "examples": examples}},
    }}


_ERROR = {"model": ErrorBody}
EVENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": IngestResult, "description": "Every event accepted or a duplicate."},
    207: {"model": IngestResult, "description": "Some events accepted, some rejected (see `rejected`)."},
    400: {**_ERROR, "description": "The body is not JSON (malformed_json), nests deeper than any event "
          "(nesting_too_deep) or has a bad Content-Length."},
    401: {**_ERROR, "description": "No bearer token, or an unknown one."},
    403: {"model": IngestResult, "description": "Every event rejected as forbidden_commune."},
    409: {"model": IngestResult, "description": "Every event rejected as event_id_conflict."},
    413: {**_ERROR, "description": "Body larger than the limit (body_too_large) or too many events (batch_too_large)."},
    422: {"model": IngestResult, "description": "Every event rejected (contract violations or mixed reasons)."},
    503: {**_ERROR, "description": "Neither Kafka nor the gateway's spool took the events in time (kafka_unavailable); "
          "retry later: a retry is never duplicated downstream."},
}


def _install_openapi(app: FastAPI) -> None:
    """The generated spec plus contract v1's schemas (from msgspec) as components."""
    _, event_components = msgspec.json.schema_components(
        [events.DossierEvent], ref_template="#/components/schemas/{name}")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {}).setdefault("schemas", {}).update(event_components)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _lifespan(recent: RecentEvents, path: Path | None):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if path is not None:
            recent.save(path)
            log.info("saved %d recent event_ids to %s", len(recent), path)

    return lifespan


def _recent_events(gateway_settings: GatewaySettings) -> RecentEvents:
    recent = RecentEvents(gateway_settings.dedup_capacity)
    if gateway_settings.dedup_file is not None:
        loaded = recent.load(gateway_settings.dedup_file)
        log.info("loaded %d recent event_ids from %s", loaded, gateway_settings.dedup_file)
    return recent


def create_app(settings: Settings, gateway_settings: GatewaySettings, publisher: EventPublisher, *,
               tokens: TokenStore | None = None, clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The gateway's ASGI app. ``tokens`` defaults to ONESTOP_GATEWAY_TOKENS_FILE (required then);
    ``clock`` (default: the wall clock) is what admission judges occurred_at against."""
    if tokens is None:
        if gateway_settings.tokens_file is None:
            raise TokenFileError("ONESTOP_GATEWAY_TOKENS_FILE is not set: the gateway needs the token hashes")
        tokens = TokenStore.from_file(gateway_settings.tokens_file)
    recent = _recent_events(gateway_settings)
    rules = rules_from(settings, load_catalogue(settings.catalogue_file))
    ingestor = Ingestor(publisher, recent, timeout=gateway_settings.publish_timeout, rules=rules, clock=clock)
    metrics = Metrics(settings.province_code)
    app = FastAPI(title=API_TITLE, version=API_VERSION, lifespan=_lifespan(recent, gateway_settings.dedup_file),
                  description=API_DESCRIPTION)
    metrics.extras.instrument(app)
    app.state.metrics, app.state.recent, app.state.tokens = metrics, recent, tokens
    _install_openapi(app)
    _add_error_handlers(app, metrics)
    _add_event_route(app, gateway_settings, tokens, ingestor, metrics)
    _add_ops_routes(app, metrics)
    return app


def _add_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return _error_response(metrics, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = str(exc.detail).lower().replace(" ", "_")
        return JSONResponse({"code": code, "message": str(exc.detail)}, exc.status_code, headers=exc.headers)


def _add_event_route(app: FastAPI, gateway_settings: GatewaySettings, tokens: TokenStore, ingestor: Ingestor,
                     metrics: Metrics) -> None:
    bearer = HTTPBearer(auto_error=False, description="The token issued to your commune (one per commune system).")

    @app.post("/v1/events", responses=EVENT_RESPONSES, openapi_extra=_request_body_spec(), tags=["events"],
              summary="Send one event or a batch of events", response_model=None, operation_id="postEvents")
    async def post_events(request: Request,
                          credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Response:
        commune = _authenticate(tokens, credentials)
        body = await read_body(request, gateway_settings.max_body_bytes)
        try:
            raws = split_body(body, gateway_settings.max_batch_size)
        except GatewayError as exc:
            if exc.code in BODY_DEAD_LETTERED:
                await run_in_threadpool(_dead_letter_body, ingestor, body, commune, exc)
            raise
        try:
            outcome = await run_in_threadpool(ingestor.ingest, raws, commune)
        except PublishError as exc:
            log.error("commune %s: %s", commune, exc)  # the details (spool paths...) stay in the log
            raise GatewayError(503, "kafka_unavailable", "Kafka did not confirm the events in time; retry "
                               "later (a retry is never duplicated downstream)", {"Retry-After": "5"}) from None
        return _answer(metrics, outcome, commune)


def _dead_letter_body(ingestor: Ingestor, body: bytes, commune: str, exc: GatewayError) -> None:
    try:
        ingestor.reject_body(body, commune, exc.code, exc.message)
    except PublishError as failure:  # the sender still deserves its 400
        log.error("commune %s: cannot dead-letter a malformed body: %s", commune, failure)


def _answer(metrics: Metrics, outcome: Outcome, commune: str) -> JSONResponse:
    status = status_of(outcome)
    metrics.count(outcome)
    metrics.extras.accepted(commune, outcome.accepted)
    metrics.requests.labels(status=str(status)).inc()
    if outcome.rejected:
        log.info("commune %s: %d accepted, %d duplicates, %d rejected (%s)", commune, outcome.accepted,
                 outcome.duplicates, len(outcome.rejected), ", ".join(sorted({r.code for r in outcome.rejected})))
    rejected = [{"index": r.index, "code": r.code, "message": r.message, "field": r.field,
                 "event_id": r.event_id, "status": r.status} for r in outcome.rejected]
    return JSONResponse({"accepted": outcome.accepted, "duplicates": outcome.duplicates, "rejected": rejected},
                        status)


def _add_ops_routes(app: FastAPI, metrics: Metrics) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers", operation_id="healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse,
             operation_id="metrics")
    async def prometheus_metrics() -> Response:
        # The gateway's own counters, then the process-wide registry (publisher spool, process, GC).
        return Response(generate_latest(metrics.registry) + generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class _NoPublisher:
    """Stands in for Kafka when the app is built only to render its OpenAPI document."""

    def publish_raw(self, key: bytes | None, value: bytes) -> None:
        raise PublishError("no publisher")

    def dead_letter(self, record: Any) -> None:
        raise PublishError("no publisher")

    def flush(self, timeout: float | None = None, *, durable_ok: bool = False) -> None:
        pass


def openapi_text() -> str:
    """The OpenAPI document of the gateway as checked in at producers/openapi/gateway.v1.json."""
    app = create_app(Settings(), GatewaySettings(tokens_file=None), _NoPublisher(), tokens=TokenStore({}))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def run_gateway(settings: Settings, gateway_settings: GatewaySettings) -> None:
    """Serve the gateway with uvicorn until interrupted, publishing through the real Kafka Publisher."""
    import uvicorn

    from producers.publisher import Publisher

    if gateway_settings.tokens_file is None:
        raise TokenFileError("ONESTOP_GATEWAY_TOKENS_FILE is not set: the gateway needs the token hashes")
    tokens = TokenStore.from_file(gateway_settings.tokens_file)  # before connecting: fail fast on a bad file
    with Publisher(settings, client_id="onestop-gateway") as publisher:
        app = create_app(settings, gateway_settings, publisher, tokens=tokens)
        log.info("gateway for %d communes on http://%s:%d", len(app.state.tokens), gateway_settings.host,
                 gateway_settings.port)
        uvicorn.run(app, host=gateway_settings.host, port=gateway_settings.port,
                    log_level=settings.log_level.lower(), proxy_headers=False, server_header=False)
