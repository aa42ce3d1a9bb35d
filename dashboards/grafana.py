"""Grafana dashboards built with Grafana's typed SDK (grafana-foundation-sdk) from the one panel source.

The SDK has no ClickHouse query type, so ``ClickHouseQuery`` adds one the SDK's
way: a ``Dataquery`` variant that serialises to the grafana-clickhouse-datasource
v4 query model (``editorType: sql``, ``rawSql``, ``queryType`` table or
timeseries, numeric ``format``: 0 time series, 1 table, as the plugin's back end
reads it), with a builder beside it. Everything else is the SDK's own builders.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

from grafana_foundation_sdk.builders import barchart, bargauge, common as common_b, dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder, variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m, dashboard as dash_m, prometheus as prom_m

from dashboards.catalog import CLICKHOUSE_UID, DASHBOARDS, PROMETHEUS_UID, scoped_panels
from dashboards.model import Dashboard, Panel, Placed
from dashboards.sql import T_COMMUNES

CLICKHOUSE_TYPE = "grafana-clickhouse-datasource"
PROMETHEUS_TYPE = "prometheus"
CLICKHOUSE = dash_m.DataSourceRef(type_val=CLICKHOUSE_TYPE, uid=CLICKHOUSE_UID)
PROMETHEUS = dash_m.DataSourceRef(type_val=PROMETHEUS_TYPE, uid=PROMETHEUS_UID)
TIME_SERIES_FORMAT, TABLE_FORMAT = 0, 1


class ClickHouseQueryModel(cogvariants.Dataquery):
    """One target of the ClickHouse data source (v4 query model, SQL editor)."""

    def __init__(self, raw_sql: str = "", ref_id: str = "A", time_series: bool = False,
                 datasource: dash_m.DataSourceRef | None = None) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.time_series = time_series
        self.datasource = datasource or CLICKHOUSE

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": self.datasource.to_json(),
            "editorType": "sql",
            "rawSql": self.raw_sql,
            "queryType": "timeseries" if self.time_series else "table",
            "format": TIME_SERIES_FORMAT if self.time_series else TABLE_FORMAT,
        }


class ClickHouseQuery(cogbuilder.Builder[ClickHouseQueryModel]):
    def __init__(self) -> None:
        self._internal = ClickHouseQueryModel()

    def build(self) -> ClickHouseQueryModel:
        return self._internal

    def raw_sql(self, sql: str) -> typing.Self:
        self._internal.raw_sql = sql
        return self

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def time_series(self, on: bool) -> typing.Self:
        self._internal.time_series = on
        return self


_PANEL_BUILDERS = {"stat": stat.Panel, "timeseries": timeseries.Panel, "table": table.Panel,
                   "bargauge": bargauge.Panel, "barchart": barchart.Panel}


def _targets(panel: Panel) -> list[cogbuilder.Builder]:
    if panel.source == "clickhouse":
        return [ClickHouseQuery().raw_sql(panel.sql).ref_id("A").time_series(panel.time_series)]
    expressions = [(panel.sql, panel.legend), *panel.extra_sql]
    targets = []
    for i, (expr, legend) in enumerate(expressions):
        q = prom_b.Dataquery().expr(expr).ref_id(chr(ord("A") + i)).datasource(PROMETHEUS).legend_format(legend)
        if panel.viz == "table":
            q = q.instant().format(prom_m.PromQueryFormat.TABLE)
        else:
            q = q.range()
        targets.append(q)
    return targets


def _thresholds(panel: Panel) -> dash_b.ThresholdsConfig:
    steps = [dash_m.Threshold(value=v, color=c) for v, c in panel.thresholds]
    return dash_b.ThresholdsConfig().mode(dash_m.ThresholdsMode.ABSOLUTE).steps(steps)


def _style(builder: typing.Any, panel: Panel) -> typing.Any:
    """Look of each kind of panel: big numbers, bars for rankings, readable tables on a wall screen."""
    if panel.viz == "stat":
        builder = (builder.color_mode(common_m.BigValueColorMode.BACKGROUND)
                   .graph_mode(common_m.BigValueGraphMode.NONE)
                   .text_mode(common_m.BigValueTextMode.VALUE_AND_NAME)
                   .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    elif panel.viz == "bargauge":
        builder = (builder.orientation(common_m.VizOrientation.HORIZONTAL)
                   .display_mode(common_m.BarGaugeDisplayMode.BASIC)
                   .reduce_options(common_b.ReduceDataOptions().values(True).calcs([]).fields(f"/^{_value_field(panel)}$/")))
    elif panel.viz == "barchart":
        builder = builder.orientation(common_m.VizOrientation.HORIZONTAL).show_value(common_m.VisibilityMode.AUTO)
        if panel.key == "open_by_age":
            builder = builder.stacking(common_m.StackingMode.NORMAL)
    elif panel.viz == "timeseries":
        builder = builder.line_width(2).fill_opacity(15).show_points(common_m.VisibilityMode.NEVER)
    elif panel.viz == "table":
        builder = builder.cell_height(common_m.TableCellHeight.SM)
    return builder


def _value_field(panel: Panel) -> str:
    return {"rank_ontime": "Đúng hạn", "rank_overdue": "Quá hạn"}.get(panel.key, ".*")


def panel_builder(placed: Placed, panel: Panel, panel_id: int) -> cogbuilder.Builder[dash_m.Panel]:
    builder = (_PANEL_BUILDERS[panel.viz]()
               .id(panel_id)
               .title(panel.title)
               .description(f"{panel.title_en}. {panel.description}")
               .datasource(CLICKHOUSE if panel.source == "clickhouse" else PROMETHEUS)
               .grid_pos(dash_m.GridPos(h=placed.h, w=placed.w, x=placed.x, y=placed.y))
               .unit(panel.unit)
               .thresholds(_thresholds(panel))
               .targets(_targets(panel)))
    if panel.decimals is not None:
        builder = builder.decimals(panel.decimals)
    if panel.min_interval:
        builder = builder.interval(panel.min_interval)
    return _style(builder, panel)


def commune_variable(database: str, province_code: str) -> dash_b.QueryVariable:
    # The plugin takes the first column as the value and the second as the text shown.
    sql = (f"SELECT code, name FROM {T_COMMUNES.replace('{db}', database)} FINAL "
           f"WHERE province_code = '{province_code}' ORDER BY name")
    return (dash_b.QueryVariable("commune").label("Xã/phường").datasource(CLICKHOUSE)
            .query(sql).refresh(dash_m.VariableRefresh.ON_DASHBOARD_LOAD).sort(dash_m.VariableSort.ALPHABETICAL_ASC))


def build(dashboard: Dashboard, *, database: str = "ioc", province_code: str = "42") -> dict:
    """The dashboard as Grafana's JSON model."""
    builder = (dash_b.Dashboard(f"{dashboard.title} · {dashboard.title_en}")
               .uid(dashboard.uid)
               .description(dashboard.description)
               .tags(list(dashboard.tags))
               .timezone("Asia/Ho_Chi_Minh")
               .time(dashboard.time_from, "now")
               .refresh(dashboard.refresh)
               .readonly())
    if "commune" in dashboard.variables():
        builder = builder.with_variable(commune_variable(database, province_code))
    for panel_id, (placed, panel) in enumerate(scoped_panels(dashboard, database), start=1):
        builder = builder.with_panel(panel_builder(placed, panel, panel_id))
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def export(directory: Path, *, database: str = "ioc", province_code: str = "42") -> list[Path]:
    """Write every dashboard's JSON into ``directory`` (what Grafana's file provider reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in DASHBOARDS:
        path = directory / f"{dashboard.uid}.json"
        model = build(dashboard, database=database, province_code=province_code)
        path.write_text(json.dumps(model, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
