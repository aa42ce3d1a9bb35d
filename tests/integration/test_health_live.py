"""The Pipeline health page of the embedded view, on a real Prometheus scraping real prometheus-client metrics.

A prometheus-client exporter on loopback carries the metrics the pipeline's
processes export (lag, records handled, dead letters, a commune's last event);
a real Prometheus scrapes it every second; the page runs the dashboard's PromQL
on it. Expected values are the ones the test set on the exporter.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from dashboards.catalog import HEALTH
from dashboards.view import Pages
from tests.integration.conftest import free_ports
from tests.integration.prom_server import prometheus

pytestmark = pytest.mark.integration
SILENT_FOR_S = 3 * 3600
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _no_store(sql: str):  # type: ignore[no-untyped-def]
    raise AssertionError(f"the health page must not read ClickHouse: {sql}")


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    registry = CollectorRegistry()
    lag = Gauge("onestop_consumer_lag_records", "lag", ["group", "topic", "partition"], registry=registry)
    handled = Counter("onestop_worker_events", "handled", ["outcome"], registry=registry)
    dlq = Counter("onestop_dlq_records", "dead letters", ["reason", "source"], registry=registry)
    last = Gauge("onestop_commune_last_event_timestamp_seconds", "last event", ["commune"], registry=registry)
    lag.labels("onestop-sink", "dossier.events", "0").set(1234)
    handled.labels("applied").inc(500)
    dlq.labels("bad_json", "gateway").inc(3)
    last.labels("18754").set(time.time() - SILENT_FOR_S)
    last.labels("18073").set(time.time())
    port = free_ports(1)[0]
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    config = f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: onestop\n    static_configs:\n" \
             f"      - targets: ['127.0.0.1:{port}']\n"
    with prometheus(tmp_path_factory.mktemp("prom-health"), config) as url:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{url}/api/v1/query?query=onestop_consumer_lag_records", timeout=5) as r:
                if json.loads(r.read())["data"]["result"]:
                    break
            time.sleep(0.5)
        time.sleep(3)  # a few samples, so rates have two points
        handled.labels("applied").inc(100)
        dlq.labels("bad_json", "gateway").inc(2)
        time.sleep(3)
        yield url
    server.shutdown()


def test_the_health_page_draws_every_panel_from_prometheus(scraped):
    html = Pages(_no_store, prometheus_url=scraped).render(HEALTH)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "ioc-health.html").write_text(html, encoding="utf-8")
    for panel in HEALTH.panels:
        section = re.search(rf'<section class="panel" data-panel="{panel.key}".*?</section>', html, re.S)
        assert section, f"{panel.key} missing"
        assert 'class="error"' not in section.group(0), section.group(0)[:500]
    lag = re.search(r'data-panel="consumer_lag".*?</section>', html, re.S).group(0)
    assert "<svg" in lag and "onestop-sink" in lag  # the series' legend is its consumer group
    dlq = re.search(r'data-panel="dlq_by_reason".*?</section>', html, re.S).group(0)
    assert "<svg" in dlq and "bad_json" in dlq


def test_silent_communes_lists_only_the_one_that_went_quiet(scraped):
    html = Pages(_no_store, prometheus_url=scraped).render(HEALTH)
    table = re.search(r'data-panel="silent_communes".*?</section>', html, re.S).group(0)
    rows = re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">([^<]*)</td></tr>", table)
    assert [code for code, _ in rows] == ["18754"]
    seconds = int(rows[0][1].replace(".", ""))
    assert SILENT_FOR_S <= seconds < SILENT_FOR_S + 120


def test_an_unreachable_prometheus_shows_an_error_in_each_panel():
    html = Pages(_no_store, prometheus_url=f"http://127.0.0.1:{free_ports(1)[0]}", span=timedelta(days=1)).render(HEALTH)
    assert html.count('class="error"') == len(HEALTH.panels)
