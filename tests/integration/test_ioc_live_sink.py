"""`onestop ioc --sink`: the process that writes the embedded store also serves the live panels while it writes.

Real Kafka, the real worker, and `onestop ioc --sink` as the ClickHouse writer;
the page is fetched over loopback while the pipeline runs and after it caught
up. The expected backlog comes from the events alone (accepted and not
finished), not from any table.
"""

from __future__ import annotations

import re
import time
import urllib.request
from datetime import date

import pytest

from ops.lag import pipeline_groups, wait_caught_up
from ops.services import Services
from producers.publisher import Publisher
from producers.simulator import SimulationConfig, simulate
from tests.integration.conftest import free_ports
from tests.integration.test_pipeline import expected_backlog

pytestmark = pytest.mark.integration


def _page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return response.read().decode("utf-8")


def _open_backlog(html: str) -> int | None:
    tile = re.search(r'data-panel="open_backlog".*?data-value="([^"]*)"', html, re.S)
    return int(tile.group(1)) if tile and tile.group(1) else None


def test_the_sink_process_serves_the_live_view_of_what_it_writes(isolate, tmp_path):
    settings = isolate("ioc-sink", home=tmp_path, web_port=0, app_id="onestop-it-ioc", sink_group="onestop-it-ioc-sink",
                       clock="event")
    evs = list(simulate(SimulationConfig(communes=4, dossiers=400, seed=14, start=date(2026, 11, 2), days=5)))
    port = free_ports(1)[0]
    services = Services(settings)
    try:
        services.start("worker", "worker")
        services.start("ioc", "ioc", "--sink", "--port", str(port), "--refresh", "2")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            services.check_alive()
            try:
                if _page(url + "/healthz") == "ok":
                    break
            except OSError:
                time.sleep(0.5)
        before = _page(url + "/")
        assert 'data-panel="open_backlog"' in before  # served while the store is open for writing
        with Publisher(settings) as pub:
            pub.publish_many(evs)
        wait_caught_up(settings, pipeline_groups(settings), timeout=240, settle=4.0,
                       on_poll=lambda _: services.check_alive())
        after = _page(url + "/")
        assert _open_backlog(after) == sum(expected_backlog(evs).values())
        assert 'data-panel="overdue_list"' in _page(url + "/xa")
    finally:
        services.stop_all()
