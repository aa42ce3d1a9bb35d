"""``onestop dashboards publish`` against a local HTTP stand-in for Grafana's API that records every call.

A stand-in is acceptable here only because Grafana cannot run on these
machines (it is not packaged for them and there is no container engine). The
stand-in keeps state the way Grafana's folder, data source and dashboard APIs
do (404 for an unknown uid, create, update), so publishing twice can be
compared with publishing once. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from dashboards.catalog import CLICKHOUSE_UID, FOLDER_UID, PROMETHEUS_UID
from dashboards.publish import PublishError, Target, connect, publish


class GrafanaStandIn:
    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, str, dict | None]] = []
        self.credentials: list[str | None] = []
        self.folders: dict[str, dict] = {}
        self.sources: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.refuse = refuse  # a path prefix answered 401, as Grafana answers a bad token
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                stand_in.calls.append((method, self.path, body))
                stand_in.credentials.append(self.headers.get("Authorization"))
                if stand_in.refuse and self.path.startswith(stand_in.refuse):
                    return self._reply(401, {"message": "invalid API key"})
                status, answer = stand_in.answer(method, self.path, body)
                self._reply(status, answer)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, method: str, path: str, body: dict | None) -> tuple[int, object]:
        not_found = (404, {"message": "not found"})
        if path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            if method == "GET":
                return (200, self.folders[uid]) if uid in self.folders else not_found
            if uid not in self.folders:
                return not_found
            self.folders[uid] = {**self.folders[uid], "title": body["title"]}
            return 200, self.folders[uid]
        if path == "/api/folders" and method == "POST":
            if body["uid"] in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            return 200, self.folders[body["uid"]]
        if path.startswith("/api/datasources/uid/"):
            uid = path.rsplit("/", 1)[1]
            if method == "GET":
                return (200, self.sources[uid]) if uid in self.sources else not_found
            if uid not in self.sources:
                return not_found
            self.sources[uid] = body
            return 200, {"message": "Datasource updated"}
        if path == "/api/datasources" and method == "POST":
            if body["uid"] in self.sources:
                return 409, {"message": "data source with the same uid already exists"}
            self.sources[body["uid"]] = body
            return 200, {"message": "Datasource added"}
        if path == "/api/dashboards/db" and method == "POST":
            uid = body["dashboard"]["uid"]
            if uid in self.dashboards and not body.get("overwrite"):
                return 412, {"message": "version-mismatch"}
            self.dashboards[uid] = body
            return 200, {"uid": uid, "status": "success"}
        return not_found

    def state(self) -> str:
        return json.dumps([self.folders, self.sources, self.dashboards], sort_keys=True)

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def grafana():
    stand_in = GrafanaStandIn()
    yield stand_in
    stand_in.close()


TARGET = Target(clickhouse_password="reader-secret")


def test_publish_creates_the_folder_the_data_sources_and_the_dashboards(grafana):
    saved = publish(connect(grafana.url, token="t0ken"), TARGET)
    assert saved == ["onestop-province", "onestop-commune", "onestop-practices", "onestop-pipeline"]
    assert grafana.folders == {FOLDER_UID: {"uid": FOLDER_UID, "title": "OneStop IOC"}}
    assert set(grafana.sources) == {CLICKHOUSE_UID, PROMETHEUS_UID}
    clickhouse = grafana.sources[CLICKHOUSE_UID]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    assert clickhouse["jsonData"]["defaultDatabase"] == "ioc"
    assert clickhouse["jsonData"]["username"] == "grafana_reader"
    assert clickhouse["secureJsonData"] == {"password": "reader-secret"}
    for uid, body in grafana.dashboards.items():
        assert body["folderUid"] == FOLDER_UID and body["overwrite"] is True
        assert body["dashboard"]["uid"] == uid and body["dashboard"]["panels"]


def test_publishing_twice_leaves_grafana_as_publishing_once(grafana):
    api = connect(grafana.url, token="t0ken")
    publish(api, TARGET)
    once = grafana.state()
    first_calls = len(grafana.calls)
    publish(api, TARGET)
    assert grafana.state() == once
    second = grafana.calls[first_calls:]
    assert [m for m, path, _ in second if path in ("/api/folders", "/api/datasources")] == [], \
        "a second publish must update, not create"
    assert sum(1 for m, path, _ in second if m == "PUT") == 3  # the folder and the two data sources


def test_the_token_is_sent_as_a_bearer_credential(grafana):
    publish(connect(grafana.url, token="t0ken"), TARGET)
    assert grafana.credentials and set(grafana.credentials) == {"Bearer t0ken"}


def test_a_refusal_names_the_step_and_stops(grafana):
    grafana.refuse = "/api/datasources"
    with pytest.raises(PublishError, match="ClickHouse data source"):
        publish(connect(grafana.url, token="bad"), TARGET)
    assert grafana.dashboards == {}


def test_the_command_publishes_and_reports(grafana, monkeypatch):
    from onestop_cli import app

    monkeypatch.setenv("GRAFANA_TOKEN", "t0ken")
    monkeypatch.setenv("CLICKHOUSE_READER_PASSWORD", "reader-secret")
    result = CliRunner().invoke(app, ["dashboards", "publish", "--grafana-url", grafana.url])
    assert result.exit_code == 0, result.output
    assert "4 dashboards" in result.output
    assert grafana.sources[CLICKHOUSE_UID]["secureJsonData"]["password"] == "reader-secret"
