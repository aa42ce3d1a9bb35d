"""Every query of the Pipeline health dashboard is accepted by a real Prometheus (Debian's package, on loopback).

Grafana replaces ``$__rate_interval`` before the query reaches Prometheus; the
test does the same. A typo in a function name, a missing bracket or a label
matcher Prometheus cannot parse makes the query API answer 400 and the test fail.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from dashboards.catalog import HEALTH
from tests.integration.prom_server import prometheus as start_prometheus

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    with start_prometheus(tmp_path_factory.mktemp("prometheus")) as url:
        yield url


def _query(url: str, expr: str) -> tuple[int, dict]:
    q = urllib.parse.urlencode({"query": expr, "time": f"{time.time():.0f}"})
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _expressions():  # type: ignore[no-untyped-def]
    for panel in HEALTH.panels:
        for expr, _legend in ((panel.sql, panel.legend), *panel.extra_sql):
            yield pytest.param(expr, id=f"{panel.key}:{expr[:40]}")


@pytest.mark.parametrize("expr", list(_expressions()))
def test_prometheus_accepts_the_query(prometheus, expr):
    status, body = _query(prometheus, expr.replace("$__rate_interval", "1m"))
    assert status == 200 and body["status"] == "success", body


def test_a_broken_query_is_refused(prometheus):
    status, body = _query(prometheus, "sum by (reason) (increase(onestop_dlq_records_total[1m])")
    assert status == 400 and body["status"] == "error"
