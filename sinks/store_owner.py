"""The store owner: the one process that holds the embedded chDB store also answers read-only queries.

chDB allows one process per data directory and has no port. So the process
that owns the store (the sink; later the live IOC view) runs a ``StoreOwner``:
a small HTTP endpoint on 127.0.0.1 that runs read-only queries
(``sinks.readonly``) on the same engine and streams the result back as Arrow
IPC batches. It advertises itself in ``ONESTOP_HOME/store-owner.json`` (its
pid, address, store path and an access token, readable by the owner's user
only); ``OwnerReader`` is the client that ``onestop query``, ``export`` and
``report`` use while it runs.

Protocol (loopback only, ``Authorization: Bearer <token>`` on every request):

- ``GET /health`` → ``{"pid", "store"}``;
- ``POST /query`` with ``{"sql", "parameters"}`` → 200 and an Arrow IPC
  stream in chunked transfer encoding, or 403 (refused: not a read) / 400
  (the query failed) with ``{"error": message}``. A failure part-way through
  ends the response without its last chunk, so the client cannot mistake a
  cut-off result for a complete one.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import secrets
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Mapping

import pyarrow as pa

from onestop.settings import Settings
from sinks.clickhouse import StoreError
from sinks.readonly import ChdbReader, ReadRefused, query_parameter, chdb_path

log = logging.getLogger(__name__)

ADVERT = "store-owner.json"
STREAM_BUFFER = 1 << 18
CLIENT_TIMEOUT_S = 600.0


def advert_path(settings: Settings) -> Path:
    return settings.home / ADVERT


class StoreOwner:
    """Serve read-only queries on loopback for as long as this process owns the embedded store."""

    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = chdb_path(settings.effective_clickhouse_dsn)
        self.advert = advert_path(settings)
        self.host, self.port = host, port
        self.token = secrets.token_urlsafe(24)
        self._anchor: ChdbReader | None = None
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the store owner is not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "StoreOwner":
        # Keeps the engine open for the owner's lifetime, even while no request is running.
        self._anchor = ChdbReader(self.path)
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="store-owner", daemon=True).start()
        self._advertise()
        log.info("answering read-only queries on %s for the store %s", self.url, self.path)
        return self

    def stop(self) -> None:
        self._withdraw()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None

    def __enter__(self) -> "StoreOwner":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _advertise(self) -> None:
        doc = {"pid": os.getpid(), "url": self.url, "token": self.token, "store": self.path,
               "started_at": datetime.now(timezone.utc).isoformat()}
        self.advert.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.advert.with_name(f".{self.advert.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, self.advert)

    def _withdraw(self) -> None:
        advert = read_advert(self.advert)
        if advert is not None and advert.get("pid") == os.getpid():
            self.advert.unlink(missing_ok=True)


def _handler(owner: StoreOwner) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("store owner: " + fmt, *args)

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path != "/health":
                return self._reply(404, {"error": f"no such path {self.path}"})
            self._reply(200, {"pid": os.getpid(), "store": owner.path})

        def do_POST(self) -> None:
            if not self._authorised():
                return
            if self.path != "/query":
                return self._reply(404, {"error": f"no such path {self.path}"})
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                sql, parameters = request["sql"], request.get("parameters") or {}
            except (ValueError, KeyError, TypeError) as exc:
                return self._reply(400, {"error": f"bad request: {exc}"})
            _answer(self, owner.path, sql, parameters)

        def _authorised(self) -> bool:
            if secrets.compare_digest(self.headers.get("Authorization", ""), f"Bearer {owner.token}"):
                return True
            self._reply(401, {"error": "missing or wrong token (see the store owner's advert file)"})
            return False

        def _reply(self, status: int, doc: dict) -> None:
            body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _answer(handler: BaseHTTPRequestHandler, path: str, sql: str, parameters: Mapping[str, Any]) -> None:
    """Run one query on a fresh read-only handle and stream its batches; errors before the first byte as JSON."""
    reader = ChdbReader(path)
    try:
        with reader.stream(sql, parameters) as batches:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/vnd.apache.arrow.stream")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            try:
                _send(handler, batches)
            except Exception as exc:  # the client sees a response without its last chunk
                log.warning("store owner: stream of %r broke off: %s", sql[:200], exc)
                handler.close_connection = True
    except ReadRefused as exc:
        handler._reply(403, {"error": str(exc), "refused": True})  # type: ignore[attr-defined]
    except StoreError as exc:
        handler._reply(400, {"error": str(exc)})  # type: ignore[attr-defined]
    finally:
        reader.close()


def _send(handler: BaseHTTPRequestHandler, batches: pa.RecordBatchReader) -> None:
    """One chunk per batch (or per STREAM_BUFFER bytes of small batches), then the stream's end.

    If reading fails part-way, neither the Arrow end-of-stream marker nor the
    last chunk is sent: the client then sees a broken response, not a short one.
    """
    pending = _Pending()
    writer = pa.ipc.new_stream(pending, batches.schema)
    for batch in batches:
        writer.write_batch(batch)
        if len(pending.data) >= STREAM_BUFFER:
            _chunk(handler, pending.take())
    writer.close()
    _chunk(handler, pending.take())
    handler.wfile.write(b"0\r\n\r\n")


def _chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    if data:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


class _Pending(io.RawIOBase):
    """What the Arrow writer wrote and the socket has not been sent yet."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.data += data
        return len(data)

    def take(self) -> bytes:
        data, self.data = bytes(self.data), bytearray()
        return data


# --- clients ---------------------------------------------------------------------------------------


def read_advert(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OwnerReader:
    """Read-only queries sent to the process that owns the store."""

    def __init__(self, advert: dict) -> None:
        self.url, self.token, self.pid = advert["url"], advert["token"], int(advert["pid"])
        self.where = f"the store owner (pid {self.pid}) at {self.url}"
        host, _, port = self.url.removeprefix("http://").partition(":")
        self._address = (host, int(port))

    def health(self, timeout: float = 2.0) -> dict:
        conn = http.client.HTTPConnection(*self._address, timeout=timeout)
        try:
            conn.request("GET", "/health", headers=self._headers())
            response = conn.getresponse()
            doc = json.loads(response.read() or b"{}")
            if response.status != 200:
                raise StoreError(f"the store owner at {self.url} answered {response.status}: {doc.get('error')}")
            return doc
        finally:
            conn.close()

    @contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Iterator[pa.RecordBatchReader]:
        body = json.dumps({"sql": sql, "parameters": {k: query_parameter(v) for k, v in (parameters or {}).items()}})
        conn = http.client.HTTPConnection(*self._address, timeout=CLIENT_TIMEOUT_S)
        try:
            try:
                conn.request("POST", "/query", body.encode("utf-8"),
                             headers={**self._headers(), "Content-Type": "application/json"})
                response = conn.getresponse()
            except OSError as exc:
                raise StoreError(f"cannot reach {self.where}: {exc}") from exc
            if response.status != 200:
                doc = json.loads(response.read() or b"{}")
                error = ReadRefused if doc.get("refused") else StoreError
                raise error(doc.get("error") or f"{self.where} answered {response.status}")
            yield _checked(pa.ipc.open_stream(response), response, self.where)
        finally:
            conn.close()

    def close(self) -> None:
        pass

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _checked(reader: pa.RecordBatchReader, response: http.client.HTTPResponse, where: str) -> pa.RecordBatchReader:
    """Batches that end with an error, not early, if the response breaks off (no last chunk)."""

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
            response.read()  # past the Arrow end-of-stream marker: raises IncompleteRead without the last chunk
        except (http.client.HTTPException, OSError, pa.ArrowException) as exc:
            raise StoreError(f"the result from {where} broke off part-way: {exc}") from None

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def find_owner(settings: Settings) -> OwnerReader | None:
    """The live owner of this settings' embedded store, or None (a stale advert is removed)."""
    path = advert_path(settings)
    advert = read_advert(path)
    if advert is None:
        return None
    try:
        owner = OwnerReader(advert)
        store = advert["store"]
    except (KeyError, ValueError, TypeError):
        return None
    if not pid_alive(owner.pid):
        path.unlink(missing_ok=True)  # its owner died without withdrawing it
        return None
    if store != chdb_path(settings.effective_clickhouse_dsn):
        return None
    try:
        owner.health()
    except (OSError, StoreError, ValueError):
        return None
    return owner


def holder_pid(store: str) -> int | None:
    """The pid of the live process that holds the chDB store (ClickHouse's ``status`` file), if any."""
    try:
        text = Path(store, "status").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("PID:"):
            try:
                pid = int(line.split(":", 1)[1])
            except ValueError:
                return None
            return pid if pid != os.getpid() and pid_alive(pid) else None
    return None


@contextmanager
def serve_reads(settings: Settings) -> Iterator[StoreOwner | None]:
    """Run a ``StoreOwner`` while the body runs, if the store is embedded (a server answers by itself)."""
    if not settings.effective_clickhouse_dsn.startswith("chdb://"):
        yield None
        return
    with StoreOwner(settings) as owner:
        yield owner
