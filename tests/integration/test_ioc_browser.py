"""The live IOC view and the HTML report in a real browser: Debian's Chromium, driven by Playwright.

Checked on each page: every panel of the dashboard is there and drawn (tiles,
SVG marks, table rows), the numbers shown are ClickHouse's, the page asks
nothing of any other machine, and the console stays free of errors. The live
page must also refresh itself. A screenshot of the overview is kept under
tests/artifacts/ (ignored by git) and its path printed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dashboards.catalog import COMMUNE, PROVINCE, scoped_panels
from dashboards.data import run_panel, store_clock, store_query
from dashboards.live import serve
from dashboards.macros import TimeRange
from dashboards.view import Pages, write_report
from onestop.settings import Settings
from sinks.clickhouse import connect
from tests.integration.panel_seed import seed_store

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    client = connect(Settings(home=tmp_path_factory.mktemp("ioc-browser"), clickhouse_dsn=""))
    seed_store(client, "ioc")
    yield store_query(client)
    client.close()


@pytest.fixture(scope="module")
def live(store):
    server = serve(Pages(store, "ioc", refresh_s=2), "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make tools installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


class Watched:
    """A page whose requests and console messages are recorded from the start."""

    def __init__(self, browser) -> None:  # type: ignore[no-untyped-def]
        self.page = browser.new_page(viewport={"width": 1920, "height": 1300})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def off_machine(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file://", "data:", "about:"))
                and urlsplit(u).hostname not in LOCAL_HOSTS]


def expected(query, dashboard, commune=None):  # type: ignore[no-untyped-def]
    """The dashboard's panels run straight on ClickHouse, over the range the page shows."""
    as_of = store_clock(query, "ioc")
    time_range = TimeRange.ending(as_of, timedelta(days=7))
    return {p.key: run_panel(p, query, time_range, {"commune": commune or ""})
            for _, p in scoped_panels(dashboard, "ioc")}


def shown_number(value, unit: str) -> str:  # type: ignore[no-untyped-def]
    if unit == "percentunit":
        return f"{value * 100:.1f}%".replace(".", ",")
    return f"{value:,d}".replace(",", ".")


def check_page(watched: Watched, dashboard, results) -> None:  # type: ignore[no-untyped-def]
    page = watched.page
    for _, panel in scoped_panels(dashboard, "ioc"):
        section = page.locator(f'section[data-panel="{panel.key}"]')
        assert section.count() == 1, f"panel {panel.key} missing"
        assert section.locator("h2").inner_text().startswith(panel.title)
        assert section.locator(".error").count() == 0, section.inner_text()
        result = results[panel.key]
        if panel.viz == "stat":
            tiles = section.locator(".stat")
            assert tiles.count() == len(result.columns)
            for i, (column, value) in enumerate(zip(result.columns, result.rows[0])):
                tile = tiles.nth(i)
                assert tile.get_attribute("data-field") == column
                assert tile.locator(".value").inner_text() == shown_number(value, panel.unit)
        elif panel.viz == "table":
            rows = section.locator("tbody tr")
            assert rows.count() == len(result.rows)
            for i, row in enumerate(result.rows[:5]):
                assert rows.nth(i).locator("td").first.inner_text() == str(row[0])
        elif result.rows:
            marks = section.locator("svg path, svg rect, svg line")
            assert marks.count() > 0, f"{panel.key} drew nothing"
            box = section.locator("svg").first.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 60
        else:
            assert "Không có dữ liệu" in section.inner_text()


def test_the_live_overview_shows_clickhouse_numbers_offline_and_refreshes(browser, live, store):
    watched = Watched(browser)
    watched.page.goto(live + "/", wait_until="load")
    check_page(watched, PROVINCE, expected(store, PROVINCE))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "ioc-overview.png"
    watched.page.screenshot(path=str(shot), full_page=True)
    print(f"\nIOC overview screenshot: {shot}")
    with watched.page.expect_request(re.compile(r".*fragment=1.*"), timeout=10_000):
        pass  # the page refreshes its panels on its own
    watched.page.wait_for_timeout(500)
    check_page(watched, PROVINCE, expected(store, PROVINCE))
    assert not watched.off_machine(), watched.off_machine()
    assert not watched.errors, watched.errors


def test_the_live_commune_drill_down_follows_the_commune_variable(browser, live, store):
    pages = Pages(store, "ioc")
    communes = pages.communes()
    code, name = communes[-1]
    watched = Watched(browser)
    watched.page.goto(live + "/xa", wait_until="load")
    watched.page.select_option("select[name=commune]", code)  # the form submits on change
    watched.page.wait_for_url(re.compile(rf".*commune={code}.*"))
    assert watched.page.locator("select[name=commune] option:checked").inner_text() == name
    check_page(watched, COMMUNE, expected(store, COMMUNE, code))
    assert not watched.off_machine(), watched.off_machine()
    assert not watched.errors, watched.errors


def test_the_html_report_is_self_contained(browser, store, tmp_path):
    index, written = write_report(Pages(store, "ioc"), tmp_path / "report")
    assert len(written) == 1 + len(Pages(store, "ioc").communes())
    watched = Watched(browser)
    watched.page.goto(index.as_uri(), wait_until="load")
    check_page(watched, PROVINCE, expected(store, PROVINCE))
    code = Pages(store, "ioc").communes()[0][0]
    watched.page.goto((tmp_path / "report" / f"xa-{code}.html").as_uri(), wait_until="load")
    check_page(watched, COMMUNE, expected(store, COMMUNE, code))
    assert all(u.startswith(("file://", "data:", "about:")) for u in watched.requests), watched.requests
    assert not watched.errors, watched.errors
    assert "<script" not in index.read_text(encoding="utf-8")


def test_the_watch_catches_a_request_off_the_machine_and_a_console_error(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://192.0.2.1/x.png"><script>console.error("boom")</script></body></html>',
                    encoding="utf-8")
    watched = Watched(browser)
    watched.page.route("**/*", lambda route: route.abort() if "192.0.2.1" in route.request.url else route.continue_())
    watched.page.goto(page.as_uri(), wait_until="load")
    assert watched.off_machine() == ["http://192.0.2.1/x.png"]
    assert "boom" in watched.errors

