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
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import yaml
from kafka import KafkaProducer

from onestop.settings import Settings
from streams.model import Alert, alert_id, encode_alert
from tests.integration.conftest import free_ports

REPO_ROOT = Path(__file__).resolve().parents[1]

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
                repeat_interval: str = "1h", source: Path = CONFIG, telegram: bool = True) -> dict:
    """The deployment's config with local receivers and short timings (``telegram=False``: webhooks only)."""
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    config["global"] = {"resolve_timeout": "5m"}
    config["templates"] = [str(source.parent / t) for t in config.get("templates", [])]
    for receiver in config["receivers"]:
        name = receiver["name"]
        telegram_configs = receiver.get("telegram_configs") if telegram else None
        for key in [k for k in receiver if k.endswith("_configs")]:
            del receiver[key]
        if telegram_configs:
            receiver["telegram_configs"] = [{**c, "api_url": f"http://127.0.0.1:{webhook.port}"}
                                            for c in telegram_configs]
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


def overdue(dossier: str, commune: str, *, days_ago: int = 0, kind: str = "overdue") -> Alert:
    now = utcnow()
    due = now - timedelta(days=days_ago)  # 0: due now, 0 working days overdue: the officer only
    return Alert(alert_id=alert_id(dossier, kind, due), kind=kind, dossier_id=dossier, commune_code=commune,
                 receiving_commune_code=commune, procedure_code="1.001193", field="Hộ tịch", due_at=due,
                 original_due_at=due, fired_at=now, clock="wall")


def cleared(alert: Alert) -> Alert:
    return Alert(alert_id=alert_id(alert.dossier_id, f"cleared:{alert.alert_id}", None), kind="cleared",
                 dossier_id=alert.dossier_id, commune_code=alert.commune_code,
                 receiving_commune_code=alert.receiving_commune_code, procedure_code=alert.procedure_code,
                 field=alert.field, due_at=alert.due_at, original_due_at=alert.original_due_at, fired_at=utcnow(),
                 clock="wall", clears=alert.alert_id)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)


PROMETHEUS_BINARY = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(PROMETHEUS_BINARY is None, reason="prometheus not installed (make tools)")
RULES = REPO_ROOT / "deploy" / "prometheus" / "rules"


def rules_without_delays(out: Path) -> list[Path]:
    """The deployment's rule files with every ``for:`` removed: the same expressions, firing at once."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(RULES.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                rule.pop("for", None)
        target = out / path.name
        target.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
        written.append(target)
    return written


class Prometheus:
    """``prometheus`` on 127.0.0.1 with a temporary config: scrape every second, evaluate every second."""

    def __init__(self, home: Path, jobs: dict[str, str], rule_files: list[Path], alertmanager: str | None) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                               for job, target in jobs.items()],
        }
        if alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        self.config_file = home / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Prometheus":
        assert PROMETHEUS_BINARY is not None
        log = open(self.home / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS_BINARY, f"--config.file={self.config_file}", f"--storage.tsdb.path={self.home / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._ready(), timeout, "prometheus ready")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited: {(self.home / 'prometheus.log').read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.api("alerts")["alerts"] if a["state"] == "firing"}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
