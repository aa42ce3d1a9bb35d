"""Pages of the embedded view and the offline report: panels run against one ``Query``, laid out, rendered.

"Now" is the store's clock (``dashboards.data.store_clock``), so a replay or a
simulation shows its own present, and a live store the wall clock's.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dashboards.catalog import COMMUNE, HEALTH, PROVINCE, scoped_panels
from dashboards.data import DEFAULT_SPAN, Query, communes_with_data, run_panel, store_clock
from dashboards.macros import TimeRange
from dashboards.model import Dashboard
from dashboards.page import View, document, fragment

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


@dataclass
class Pages:
    """Renders the IOC pages from one store."""

    query: Query
    database: str = "ioc"
    span: timedelta = DEFAULT_SPAN
    refresh_s: int | None = 10
    prometheus_url: str | None = None  # the Pipeline health page needs one

    def clock(self) -> datetime:
        return store_clock(self.query, self.database) or datetime.now(timezone.utc)

    def communes(self) -> list[tuple[str, str]]:
        return communes_with_data(self.query, self.database)

    def render(self, dashboard: Dashboard, commune: str | None = None, *, part: bool = False,
               links: list[tuple[str, str, bool]] | None = None) -> str:
        if dashboard.source == "prometheus":
            return self._render_health(dashboard, part, links or [])
        as_of = self.clock()
        communes = self.communes() if dashboard.scope == "commune" else []
        if dashboard.scope == "commune" and commune is None and communes:
            commune = communes[0][0]
        variables = {"commune": commune or ""}
        time_range = TimeRange.ending(as_of, self.span)
        placed = [(pl, run_panel(panel, self.query, time_range, variables))
                  for pl, panel in scoped_panels(dashboard, self.database)]
        view = View(dashboard, as_of, communes, commune, links or [], self.refresh_s)
        return fragment(view, placed) if part else document(view, placed)


    def _render_health(self, dashboard: Dashboard, part: bool, links: list[tuple[str, str, bool]]) -> str:
        from dashboards.prometheus import run_health_panel

        if self.prometheus_url is None:
            raise ValueError("the Pipeline health page needs a Prometheus (--prometheus-url)")
        now = datetime.now(timezone.utc)  # the pipeline's health is judged on the wall clock
        time_range = TimeRange.ending(now, HEALTH_SPAN)
        placed = [(pl, run_health_panel(panel, self.prometheus_url, time_range))
                  for pl, panel in scoped_panels(dashboard, self.database)]
        view = View(dashboard, now, (), None, links, self.refresh_s)
        return fragment(view, placed) if part else document(view, placed)


HEALTH_SPAN = timedelta(hours=6)


def live_links(current: str, health: bool = False) -> list[tuple[str, str, bool]]:
    links = [(PROVINCE.title, "/", current == PROVINCE.uid), (COMMUNE.title, "/xa", current == COMMUNE.uid)]
    if health:
        links.append((HEALTH.title, "/he-thong", current == HEALTH.uid))
    return links


def write_report(pages: Pages, out: Path) -> tuple[Path, list[Path]]:
    """The province overview (index.html) and one page per commune, linked together, no script at all."""
    out.mkdir(parents=True, exist_ok=True)
    static = Pages(pages.query, pages.database, pages.span, refresh_s=None)
    communes = static.communes()
    first = f"xa-{communes[0][0]}.html" if communes else "index.html"
    index = out / "index.html"
    index.write_text(static.render(PROVINCE, links=[(PROVINCE.title, "index.html", True),
                                                    (COMMUNE.title, first, False)]), encoding="utf-8")
    written = [index]
    for code, _name in communes:
        path = out / f"xa-{code}.html"
        html = static.render(COMMUNE, code, links=[(PROVINCE.title, "index.html", False), (COMMUNE.title, path.name, True)])
        # The report has no server: choosing a commune opens its own page.
        html = html.replace('<form method="get">', '<form method="get" action="javascript:void(0)" '
                            'onchange="location.href=\'xa-\'+this.commune.value+\'.html\'">')
        path.write_text(html, encoding="utf-8")
        written.append(path)
    return index, written


def chromium() -> str | None:
    return next((c for c in CHROMIUM if Path(c).exists()), shutil.which("chromium"))


def screenshot(page: Path, png: Path, *, width: int = 1920, height: int = 1300, timeout: float = 90) -> Path | None:
    """A PNG of a page, taken by the machine's headless Chromium; None when there is no Chromium."""
    browser = chromium()
    if browser is None:
        return None
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=timeout)
    return png
