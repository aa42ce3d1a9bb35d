"""Push the IOC folder, data sources and dashboards to an existing Grafana, through grafana-client.

Publishing twice leaves Grafana as publishing once: the folder and the data
sources are looked up by their fixed uids and updated when they exist, and
dashboards are saved with ``overwrite`` under their fixed uids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.catalog import CLICKHOUSE_UID, DASHBOARDS, FOLDER_TITLE, FOLDER_UID, PROMETHEUS_UID
from dashboards.grafana import CLICKHOUSE_TYPE, PROMETHEUS_TYPE, build

log = logging.getLogger(__name__)
CLICKHOUSE_PLUGIN_VERSION = "4.20.0"


class PublishError(RuntimeError):
    """Grafana refused a step; the message names the step and Grafana's answer."""


@dataclass(frozen=True)
class Target:
    """Where Grafana finds the pipeline's stores, as Grafana (not this machine) reaches them."""

    clickhouse_host: str = "clickhouse"
    clickhouse_port: int = 8123
    clickhouse_protocol: str = "http"
    clickhouse_user: str = "grafana_reader"
    clickhouse_password: str | None = None
    database: str = "ioc"
    prometheus_url: str = "http://prometheus:9090"
    province_code: str = "42"


def clickhouse_datasource(target: Target) -> dict[str, Any]:
    """The ClickHouse data source (grafana-clickhouse-datasource v4 JSON model), as provisioning has it."""
    source: dict[str, Any] = {
        "name": "ClickHouse (onestop)", "uid": CLICKHOUSE_UID, "type": CLICKHOUSE_TYPE, "access": "proxy",
        "isDefault": True,
        "jsonData": {"host": target.clickhouse_host, "port": target.clickhouse_port,
                     "protocol": target.clickhouse_protocol, "secure": False, "username": target.clickhouse_user,
                     "defaultDatabase": target.database, "dialTimeout": 10, "queryTimeout": 60},
    }
    if target.clickhouse_password is not None:
        source["secureJsonData"] = {"password": target.clickhouse_password}
    return source


def prometheus_datasource(target: Target) -> dict[str, Any]:
    return {"name": "Prometheus (onestop)", "uid": PROMETHEUS_UID, "type": PROMETHEUS_TYPE, "access": "proxy",
            "url": target.prometheus_url, "isDefault": False, "jsonData": {"httpMethod": "POST", "timeInterval": "15s"}}


def _missing(exc: GrafanaClientError) -> bool:
    return getattr(exc, "status_code", None) == 404


def _folder(api: GrafanaApi) -> None:
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return
    api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)


def _datasource(api: GrafanaApi, source: dict[str, Any]) -> None:
    try:
        api.datasource.get_datasource_by_uid(source["uid"])
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.datasource.create_datasource(source)
        return
    api.datasource.update_datasource_by_uid(source["uid"], source)


def publish(api: GrafanaApi, target: Target) -> list[str]:
    """Folder, then data sources, then dashboards; returns the uids of the dashboards saved."""
    steps = [("folder", lambda: _folder(api)),
             ("ClickHouse data source", lambda: _datasource(api, clickhouse_datasource(target))),
             ("Prometheus data source", lambda: _datasource(api, prometheus_datasource(target)))]
    saved = []
    for dashboard in DASHBOARDS:
        model = build(dashboard, database=target.database, province_code=target.province_code)
        body = {"dashboard": model, "folderUid": FOLDER_UID, "overwrite": True,
                "message": "onestop dashboards publish"}
        steps.append((f"dashboard {dashboard.uid}", lambda body=body: api.dashboard.update_dashboard(body)))
        saved.append(dashboard.uid)
    for name, step in steps:
        try:
            step()
        except GrafanaException as exc:
            raise PublishError(f"publishing the {name} failed: {exc}") from exc
        log.info("published the %s", name)
    return saved


def connect(url: str, *, token: str | None = None, user: str | None = None, password: str | None = None,
            timeout: float = 10.0) -> GrafanaApi:
    credential: Any = token or ((user, password) if user and password else None)
    return GrafanaApi.from_url(url, credential=credential, timeout=timeout)
