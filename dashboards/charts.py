"""Charts of the embedded view as Vega-Lite, drawn to SVG on the server by vl-convert (no browser script, no network).

One function per visualisation kind of the panel source. Times reach Vega-Lite
as Asia/Ho_Chi_Minh wall-clock strings without an offset, which Vega parses
and formats in one and the same zone, so the axis shows local time.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import vl_convert as vlc

from dashboards.data import Result
from onestop.workcal import VN_TZ

FONT = "DejaVu Sans, Noto Sans, sans-serif"
INK, MUTED, GRID = "#e6edf5", "#9fb0c3", "#2a3646"
SERIES = ["#5aa9ff", "#37d39a", "#ffb347", "#ff6b6b", "#c792ea"]
SLA_COLOURS = {"Trong hạn": "#37d39a", "Sắp đến hạn": "#ffb347", "Quá hạn": "#ff6b6b"}
_VL_VERSION = "5.20"

CONFIG: dict[str, Any] = {
    "background": None, "font": FONT,
    "view": {"stroke": None},
    "axis": {"labelColor": MUTED, "titleColor": MUTED, "gridColor": GRID, "domainColor": GRID, "tickColor": GRID,
             "labelFontSize": 13, "titleFontSize": 13, "labelLimit": 260},
    "legend": {"labelColor": INK, "titleColor": MUTED, "labelFontSize": 13, "orient": "top", "title": None},
    "text": {"color": INK, "fontSize": 12},
}


def _local(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(VN_TZ).replace(tzinfo=None).isoformat(timespec="minutes")
    return value


def _records(result: Result) -> list[dict[str, Any]]:
    return [{c: _local(v) for c, v in zip(result.columns, row)} for row in result.rows]


# Numbers as Vietnamese write them: 1.234,5 (d3-format's German locale has exactly these separators).
_LOCALE = {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " ₫"]}


def _svg(spec: dict[str, Any]) -> str:
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "config": CONFIG, **spec}
    return vlc.vegalite_to_svg(spec, vl_version=_VL_VERSION, format_locale=_LOCALE)


def _size(width: int, height: int) -> dict[str, Any]:
    return {"width": width, "height": height, "autosize": {"type": "fit", "contains": "padding"}}


def _y_title(panel) -> str:  # type: ignore[no-untyped-def]
    if panel.source == "clickhouse":
        return "hồ sơ"
    return {"s": "giây", "ops": "bản ghi/giây"}.get(panel.unit, "bản ghi")


def timeseries(result: Result, width: int, height: int) -> str:
    series = [c for c in result.columns if c != "time"]
    return _svg({
        **_size(width, height), "data": {"values": _records(result)},
        "transform": [{"fold": series, "as": ["series", "value"]}],
        "mark": {"type": "line", "strokeWidth": 2.5, "interpolate": "linear", "point": len(result.rows) <= 5},
        "encoding": {
            "x": {"field": "time", "type": "temporal", "title": None,
                  "axis": {"format": "%d/%m %H:%M", "labelAngle": 0, "tickCount": 7}},
            "y": {"field": "value", "type": "quantitative", "title": _y_title(result.panel)},
            "color": {"field": "series", "type": "nominal", "sort": series,
                      "scale": {"domain": series, "range": SERIES[: len(series)]}},
        },
    })


def bars(result: Result, width: int, height: int, *, unit: str) -> str:
    """One horizontal bar per row: the first column names it, the second is its length, written at its end."""
    label, value = result.columns[0], result.columns[1]
    fmt = ".1%" if unit == "percentunit" else (".1f" if unit == "d" else "d")
    colour: dict[str, Any] = {"value": SERIES[0]}
    if unit == "percentunit":
        colour = {"condition": [{"test": f"datum['{value}'] < 0.9", "value": "#ff6b6b"},
                                {"test": f"datum['{value}'] < 0.97", "value": "#ffb347"}], "value": "#2fb784"}
    elif value == "Quá hạn":
        colour = {"value": "#e05555"}
    records = _records(result)
    for r in records:  # long procedure and commune names: the axis has room for about 34 characters
        name = str(r[label])
        r[label] = name if len(name) <= 34 else name[:33].rstrip() + "…"
    top = max((float(r[value] or 0) for r in records), default=0.0)
    size = 13 if len(records) <= 10 else 11
    y = {"field": label, "type": "nominal", "sort": None, "title": None, "scale": {"paddingInner": 0.25},
         "axis": {"labelFontSize": size}}
    end = _axis_end(top, fmt)
    axis: dict[str, Any] = {"format": fmt}
    if fmt == "d" and end <= 10:
        axis["values"] = list(range(int(end) + 1))  # whole dossiers only
    x = {"field": value, "type": "quantitative", "title": value, "axis": axis,
         "scale": {"domain": [0, end], "nice": False}}
    height = min(height, 30 * len(records) + 40)  # a few rows get bars of a sane thickness
    return _svg({
        **_size(width, height), "data": {"values": records},
        "layer": [
            {"mark": {"type": "bar", "cornerRadiusEnd": 3}, "encoding": {"y": y, "x": x, "color": colour}},
            {"mark": {"type": "text", "align": "left", "dx": 4, "color": INK, "fontSize": size},
             "encoding": {"y": y, "x": x, "text": {"field": value, "type": "quantitative", "format": fmt}}},
        ],
    })


def _axis_end(top: float, fmt: str) -> float:
    """Room at the right of the longest bar for its label."""
    if fmt.endswith("%"):
        return 1.13
    if fmt == "d":
        return float(max(math.ceil(top * 1.15), int(top) + 1))
    return max(top * 1.15, 1.0)


def stacked(result: Result, width: int, height: int) -> str:
    """Rows of buckets, each split into the SLA columns (open dossiers by age and SLA)."""
    label, parts = result.columns[0], result.columns[1:]
    return _svg({
        **_size(width, height), "data": {"values": _records(result)},
        "transform": [{"fold": parts, "as": ["sla", "dossiers"]}],
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": label, "type": "nominal", "sort": None, "title": label},
            "x": {"field": "dossiers", "type": "quantitative", "title": "hồ sơ", "stack": "zero"},
            "color": {"field": "sla", "type": "nominal", "sort": parts,
                      "scale": {"domain": parts, "range": [SLA_COLOURS.get(p, SERIES[i]) for i, p in enumerate(parts)]}},
            "order": {"field": "sla", "sort": "descending"},
        },
    })


def chart(result: Result, width: int, height: int) -> str:
    panel = result.panel
    if panel.viz == "timeseries":
        return timeseries(result, width, height)
    if panel.key == "open_by_age":
        return stacked(result, width, height)
    return bars(result, width, height, unit=panel.unit)
