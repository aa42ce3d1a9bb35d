"""The live wall-screen view: the IOC panels over HTTP on loopback, refreshed by the page every few seconds.

The process that owns the store serves it, so it needs no other port than its
own. ``/`` is the province overview, ``/xa?commune=CODE`` the commune
drill-down, ``/he-thong`` the pipeline's health when a Prometheus is given;
``?fragment=1`` returns only what changes (the clock and the grid),
which the page fetches on its own.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from dashboards.catalog import COMMUNE, HEALTH, PROVINCE
from dashboards.view import Pages, live_links

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _Handler(BaseHTTPRequestHandler):
    pages: Pages

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        part = params.get("fragment") == ["1"]
        if url.path == "/healthz":
            return self._send(HTTPStatus.OK, "ok", "text/plain")
        if url.path == "/favicon.ico":
            return self._send(HTTPStatus.NO_CONTENT, "", "image/x-icon")
        health = self.pages.prometheus_url is not None
        dashboard = {"/": PROVINCE, "/xa": COMMUNE, **({"/he-thong": HEALTH} if health else {})}.get(url.path)
        if dashboard is None:
            return self._send(HTTPStatus.NOT_FOUND, "không có trang này", "text/plain")
        commune = (params.get("commune") or [None])[0]
        try:
            body = self.pages.render(dashboard, commune, part=part, links=live_links(dashboard.uid, health))
        except Exception as exc:  # the store went away: say so, keep serving
            log.exception("rendering %s failed", url.path)
            return self._send(HTTPStatus.SERVICE_UNAVAILABLE, f"store unavailable: {exc}", "text/plain")
        self._send(HTTPStatus.OK, body, "text/html")

    def _send(self, status: HTTPStatus, body: str, kind: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        # Nothing may come from elsewhere: the page is self-contained, and the browser enforces it.
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; "
                                                    "script-src 'unsafe-inline'; img-src 'self' data:")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)


def serve(pages: Pages, host: str = "127.0.0.1", port: int = 8090) -> ThreadingHTTPServer:
    """A started server (in a daemon thread); ``shutdown()`` stops it."""
    if host not in LOOPBACK:
        raise ValueError(f"the IOC view binds to loopback only, not {host!r}; put a reverse proxy in front")
    handler = type("IocHandler", (_Handler,), {"pages": pages})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="ioc-view", daemon=True).start()
    return server
