"""Real Alertmanager and a local webhook receiver for the on-call tests.

``Alertmanager`` runs the Debian package's binary (``prometheus-alertmanager``)
on 127.0.0.1 free ports, with its own storage path and a test copy of
deploy/alertmanager/alertmanager.yml: the same routing tree, inhibitions and
templates, with every receiver pointed at the ``Webhook`` of the test process
(e-mail receivers become webhooks; Telegram receivers keep their type and send
to the webhook as Telegram's API) and short group timings.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import yaml
from kafka import KafkaProducer

from onestop.settings import REPO_ROOT, Settings
from streams.model import Alert, encode_alert
from conftest import free_ports

AM_BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
needs_alertmanager = pytest.mark.skipif(AM_BINARY is None, reason="prometheus-alertmanager not installed (make tools)")
CONFIG = REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


@dataclass
class Notification:
    receiver: str  # the receiver's name (the webhook path), or telegram:<chat id>
    arrived: float  # time.time() when it reached the webhook
    body: dict[str, Any]

    @property
    def alerts(self) -> list[dict]:
        return self.body.get("alerts", [])

    def dossiers(self, status: str) -> set[str]:
        return {a["labels"].get("dossier_id", "") for a in self.alerts if a["status"] == status}


@dataclass
class Webhook:
    """A tiny HTTP server that records every notification Alertmanager sends it."""

    port: int = field(default_factory=lambda: free_ports(1)[0])
    received: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                note = hook._record(self.path, self.headers.get("Content-Type", ""), raw)
                # Telegram answers with the message it sent (Alertmanager reads its chat).
                body = json.dumps({"ok": True, "result": {"message_id": 1, "date": int(note.arrived), "chat": {
                    "id": int(note.body.get("chat_id") or 0), "type": "group"}, "text": note.body.get("text", "")}}
                ).encode() if note.receiver.startswith("telegram:") else b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _record(self, path: str, content_type: str, raw: bytes) -> Notification:
        arrived = time.time()
        if "/sendMessage" in path:  # Telegram's Bot API: the rendered message
            body = json.loads(raw) if "json" in content_type else {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            note = Notification(f"telegram:{body.get('chat_id')}", arrived, body)
        else:
            note = Notification(path.strip("/"), arrived, json.loads(raw))
        with self.lock:
            self.received.append(note)
        return note

    def url(self, receiver: str) -> str:
        return f"http://127.0.0.1:{self.port}/{receiver}"

    def snapshot(self) -> list[Notification]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def local_config(webhook: Webhook, *, group_wait: str = "2s", group_interval: str = "2s",
                repeat_interval: str = "1h", source: Path = CONFIG) -> dict:
    """The deployment's config with local receivers and short timings."""
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["global"] = {"resolve_timeout": "5m"}
    config["templates"] = [str(source.parent / t) for t in config.get("templates", [])]
    for receiver in config["receivers"]:
        name = receiver["name"]
        telegram = receiver.get("telegram_configs")
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        if telegram:
            receiver["telegram_configs"] = [{**c, "api_url": f"http://127.0.0.1:{webhook.port}"} for c in telegram]
        else:
            receiver["webhook_configs"] = [{"url": webhook.url(name), "send_resolved": True}]

    def shorten(route: dict) -> None:
        for key, value in (("group_wait", group_wait), ("group_interval", group_interval),
                           ("repeat_interval", repeat_interval)):
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return config


class Alertmanager:
    """``prometheus-alertmanager`` on 127.0.0.1; stopped by pid. Restartable on the same storage."""

    def __init__(self, home: Path, config: dict) -> None:
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file = home / "alertmanager.yml"
        self.config_file.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "Alertmanager":
        assert AM_BINARY is not None
        log = open(self.home / "alertmanager.log", "ab")
        self.proc = subprocess.Popen(
            [AM_BINARY, f"--config.file={self.config_file}", f"--storage.path={self.home / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             f"--web.external-url={self.url}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {(self.home / 'alertmanager.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("alertmanager did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def alerts(self) -> list[dict]:
        return httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json()


def publish_alerts(settings: Settings, alerts: list[Alert]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    try:
        for alert in alerts:
            producer.send(settings.topic_alerts, key=alert.dossier_id.encode(), value=encode_alert(alert))
        producer.flush(30)
    finally:
        producer.close()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)
