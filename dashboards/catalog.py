"""The three IOC dashboards, each a list of panels from the one panel source."""

from __future__ import annotations

from dataclasses import replace

from dashboards import health, practices
from dashboards import panels as p
from dashboards.model import Dashboard, Scope

CLICKHOUSE_UID = "onestop-clickhouse"
PROMETHEUS_UID = "onestop-prometheus"
FOLDER_UID = "onestop-ioc"
FOLDER_TITLE = "OneStop IOC"

PROVINCE = Dashboard(
    "onestop-province", "Tổng quan tỉnh", "Province overview",
    "Every commune one-stop centre of the province: today's reception, the backlog, on-time rates, rankings, "
    "the overdue list and the Decision 766 progress indicators.",
    "province",
    (*p.TILES, p.THROUGHPUT, p.RESOLUTION_TIME, p.RANK_ONTIME, p.RANK_OVERDUE, p.OVERDUE_LIST),
)

COMMUNE = Dashboard(
    "onestop-commune", "Chi tiết xã/phường", "Commune drill-down",
    "One commune's one-stop centre (choose it above): the province panels for that commune, its open dossiers "
    "by age and SLA bucket, and its recent alerts.",
    "commune",
    (*p.TILES, p.THROUGHPUT, p.OPEN_BY_AGE, p.RESOLUTION_TIME, replace(p.OVERDUE_LIST, width=16, height=8),
     p.RECENT_ALERTS),
)

HEALTH = Dashboard(
    "onestop-pipeline", "Sức khỏe hệ thống", "Pipeline health",
    "The pipeline itself, from Prometheus: consumer lag, throughput, dead letters by reason, how fresh the "
    "ClickHouse data is, and communes that stopped sending events.",
    "province", health.PANELS, source="prometheus", time_from="now-6h", refresh="30s",
)

PRACTICES = Dashboard(
    "onestop-practices", "Thực hành phục vụ", "Service practices",
    "How the communes serve: same-day resolution on no-appointment days, weekend and village service, "
    "the Decision 766 satisfaction score, and how late events reach the province.",
    "province", practices.PANELS,
)

DASHBOARDS = (PROVINCE, COMMUNE, PRACTICES, HEALTH)
LIVE = (PROVINCE, COMMUNE)  # the embedded view reads ClickHouse only


def scoped_panels(dashboard: Dashboard, database: str):  # type: ignore[no-untyped-def]
    """The dashboard's placed panels with ``{db}`` and ``@scope(...)`` resolved."""
    scope: Scope = dashboard.scope
    return [(placed, placed.panel.scoped(scope, database)) for placed in dashboard.placed()]
