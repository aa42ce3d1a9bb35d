"""The Pipeline health panels in the embedded view: their PromQL run on a Prometheus over its HTTP API.

Grafana sends a time-series panel's expressions to ``/api/v1/query_range``
with the range, a step of ``$__interval`` and ``$__rate_interval`` replaced; a
table panel's to ``/api/v1/query`` at the range's end. This does the same and
turns the answer into the rows the page draws: one column per series, named
by the panel's legend format.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

from dashboards.data import Result
from dashboards.macros import TimeRange, interval_for
from dashboards.model import Panel

SCRAPE_INTERVAL = timedelta(seconds=15)  # deploy/prometheus/prometheus.yml


class PrometheusError(RuntimeError):
    pass


def _get(url: str, path: str, params: dict[str, str]) -> list[dict]:
    try:
        with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        raise PrometheusError(body.get("error", str(exc))) from None
    except OSError as exc:
        raise PrometheusError(f"Prometheus at {url} does not answer: {exc}") from None
    return body["data"]["result"]


def _legend(fmt: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt) or "giá trị"


def rate_interval(interval: timedelta) -> str:
    """Grafana's $__rate_interval: at least four scrape intervals, and one interval more than the step."""
    seconds = max(int((interval + SCRAPE_INTERVAL).total_seconds()), int(4 * SCRAPE_INTERVAL.total_seconds()))
    return f"{seconds}s"


def run_health_panel(panel: Panel, url: str, time_range: TimeRange) -> Result:
    interval = interval_for(time_range, min_interval=SCRAPE_INTERVAL)
    expressions = [(panel.sql, panel.legend), *panel.extra_sql]
    try:
        if panel.viz == "table":
            return _instant(panel, url, time_range.end)
        series: dict[str, dict[datetime, float]] = {}
        for expr, legend in expressions:
            q = expr.replace("$__rate_interval", rate_interval(interval))
            for s in _get(url, "/api/v1/query_range", {"query": q, "start": f"{time_range.start.timestamp():.0f}",
                                                       "end": f"{time_range.end.timestamp():.0f}",
                                                       "step": f"{int(interval.total_seconds())}"}):
                points = series.setdefault(_legend(legend, s["metric"]), {})
                for at, value in s["values"]:
                    points[datetime.fromtimestamp(float(at), timezone.utc)] = float(value)
    except PrometheusError as exc:
        return Result(panel, panel.sql, [], [], error=str(exc))
    names = sorted(series)
    times = sorted({t for points in series.values() for t in points})
    rows = [(t, *(series[n].get(t) for n in names)) for t in times]
    return Result(panel, panel.sql, ["time", *names], rows)


def _instant(panel: Panel, url: str, at: datetime) -> Result:
    found = _get(url, "/api/v1/query", {"query": panel.sql, "time": f"{at.timestamp():.0f}"})
    rows = [(_legend(panel.legend, s["metric"]), round(float(s["value"][1]))) for s in found]
    return Result(panel, panel.sql, ["Xã/phường (mã)", "Số giây im lặng"], rows)
