"""The one source of the IOC panels: what each panel shows, how it is counted, its SQL and its look.

A ``Panel`` carries everything both renderers need: the Grafana dashboards
(``dashboards.grafana``) and the embedded wall-screen view and HTML report
(``dashboards.page``). Neither adds a query or a title of its own, so the two
cannot drift apart.

SQL is written once, for the ClickHouse data source of Grafana: it uses the
plugin's macros (``$__timeFilter``, ``$__toTime``, ``$__timeInterval`` …) and
the dashboard variable ``${commune}``; ``dashboards.macros`` expands them the
way the plugin does for the embedded view and the tests. Two markers are
resolved when a dashboard is built, before either renderer sees the SQL:

- ``{db}`` is the ClickHouse database (``ONESTOP_CLICKHOUSE_DATABASE``);
- ``@scope(column)`` is the commune filter: ``1`` on the province overview,
  ``column = '${commune}'`` on the commune drill-down. So one panel serves both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

Viz = Literal["stat", "timeseries", "table", "bargauge", "barchart"]
Source = Literal["clickhouse", "prometheus"]
Scope = Literal["province", "commune"]
GRID_COLUMNS = 24
SCOPE = re.compile(r"@scope\(([A-Za-z_][A-Za-z0-9_.]*)\)")


@dataclass(frozen=True)
class Panel:
    """One panel. ``title`` is Vietnamese (what operators read); ``title_en`` is kept alongside."""

    key: str
    title: str
    title_en: str
    description: str
    sql: str  # ClickHouse SQL, or a PromQL expression when source == "prometheus"
    viz: Viz
    unit: str = "short"  # a Grafana unit id: short, percentunit, d, s, none
    width: int = 6
    height: int = 4
    source: Source = "clickhouse"
    time_series: bool = False  # the query returns a ``time`` column and must use the time filter
    decimals: int | None = None
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),)
    min_interval: str | None = None  # Grafana's "min interval" of the panel (time series)
    legend: str = ""  # PromQL legend format
    extra_sql: tuple[tuple[str, str], ...] = ()  # more PromQL targets: (expression, legend)

    def scoped(self, scope: Scope, database: str) -> "Panel":
        """This panel with its markers resolved for one dashboard."""
        return replace(self, sql=resolve(self.sql, scope, database))


def resolve(sql: str, scope: Scope, database: str) -> str:
    def one(match: re.Match[str]) -> str:
        return "1" if scope == "province" else f"{match.group(1)} = '${{commune}}'"

    return SCOPE.sub(one, sql.replace("{db}", database))


@dataclass(frozen=True)
class Placed:
    """A panel at its place on the 24-column grid (the same grid in Grafana and in the embedded view)."""

    panel: Panel
    x: int
    y: int

    @property
    def w(self) -> int:
        return self.panel.width

    @property
    def h(self) -> int:
        return self.panel.height


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    title_en: str
    description: str
    scope: Scope
    panels: tuple[Panel, ...]
    source: Source = "clickhouse"
    time_from: str = "now-7d"
    refresh: str = "10s"
    tags: tuple[str, ...] = field(default=("onestop", "ioc"))

    def placed(self) -> list[Placed]:
        return layout(self.panels)

    def variables(self) -> set[str]:
        return {"commune"} if self.scope == "commune" else set()


def layout(panels: tuple[Panel, ...]) -> list[Placed]:
    """Left to right in rows of 24 columns; a row is as tall as its tallest panel."""
    placed, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        if not 1 <= panel.width <= GRID_COLUMNS:
            raise ValueError(f"panel {panel.key}: width {panel.width} does not fit a {GRID_COLUMNS}-column grid")
        if x + panel.width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed.append(Placed(panel, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return placed
