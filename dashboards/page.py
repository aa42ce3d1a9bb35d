"""The IOC panels as one self-contained HTML page: the live wall-screen view and the offline report.

The page lays the panels on the same 24-column grid as Grafana. Stat tiles and
tables are HTML; charts are SVG drawn on the server (``dashboards.charts``).
Nothing is loaded from anywhere: styles are inline, fonts are the machine's.
The live page refreshes its panels itself every ``refresh_s`` seconds.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from dashboards.charts import chart
from dashboards.data import Result
from dashboards.model import Dashboard, Placed
from onestop.workcal import VN_TZ

COLUMN_PX, ROW_PX, GAP_PX = 69, 34, 10  # a 1920-pixel wall screen
_STYLE = """
:root{color-scheme:dark}
*{box-sizing:border-box}
body{margin:0;background:#0b1320;color:#e6edf5;font-family:"DejaVu Sans","Noto Sans",sans-serif}
header{display:flex;align-items:center;gap:24px;padding:12px 20px;background:#101b2d;border-bottom:2px solid #1f3350}
header h1{font-size:26px;margin:0;font-weight:700}
header .en{color:#9fb0c3;font-size:15px;margin-left:8px;font-weight:400}
header nav a{color:#9fc9ff;margin-right:14px;text-decoration:none;font-size:16px}
header nav a.on{color:#fff;border-bottom:2px solid #5aa9ff}
header .clock{margin-left:auto;text-align:right;font-size:15px;color:#9fb0c3}
header .clock b{display:block;color:#e6edf5;font-size:22px}
header select{font-size:16px;background:#0b1320;color:#e6edf5;border:1px solid #2a3646;padding:4px 8px}
#grid{display:grid;grid-template-columns:repeat(24,1fr);grid-auto-rows:ROW;gap:GAPpx;padding:GAPpx 16px}
.panel{background:#111c2e;border:1px solid #1f3350;border-radius:6px;padding:8px 12px;overflow:hidden;display:flex;flex-direction:column}
.panel h2{font-size:17px;margin:0 0 2px;font-weight:700}
.panel h2 small{color:#8193a8;font-weight:400;font-size:12px;margin-left:6px}
.panel .body{flex:1;overflow:hidden;position:relative}
.body svg{max-width:100%;height:auto;display:block}
.stats{display:flex;gap:10px;height:100%}
.stat{flex:1;border-radius:5px;display:flex;flex-direction:column;justify-content:center;align-items:center;background:#16263d}
.stat .value{font-size:38px;font-weight:700;line-height:1.1}
.stat .name{font-size:13px;color:#c8d4e2}
.green{background:#12452f}.orange{background:#5a3b0c}.red{background:#5c1a1f}.blue{background:#16365e}
table{width:100%;border-collapse:collapse;font-size:14px}
th{position:sticky;top:0;background:#16263d;color:#9fb0c3;text-align:left;font-weight:600;padding:4px 6px}
td{padding:3px 6px;border-bottom:1px solid #1c2a3e;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:420px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.table-wrap{height:100%;overflow:auto}
.error{color:#ff8a8a;font-size:13px}
.empty{color:#8193a8;font-size:15px;padding:12px}
#status{font-size:13px;color:#ffb347}
"""
_SCRIPT = """
(function(){var every=REFRESH*1000;
function tick(){var u=new URL(window.location.href);u.searchParams.set('fragment','1');
fetch(u.toString(),{cache:'no-store'}).then(function(r){if(!r.ok){throw new Error(r.status)}return r.text()})
.then(function(t){var d=new DOMParser().parseFromString(t,'text/html');
['grid','clock'].forEach(function(id){var n=d.getElementById(id),o=document.getElementById(id);if(n&&o){o.replaceWith(n)}});
document.getElementById('status').textContent='';})
.catch(function(){document.getElementById('status').textContent='mất kết nối, thử lại sau '+REFRESH+' giây';})
.finally(function(){setTimeout(tick,every)});}
setTimeout(tick,every);})();
"""


@dataclass(frozen=True)
class View:
    """What one page shows: a dashboard, its time range end, its commune, and where the other pages are."""

    dashboard: Dashboard
    as_of: datetime
    communes: Sequence[tuple[str, str]] = ()
    commune: str | None = None
    links: Sequence[tuple[str, str, bool]] = ()  # (label, href, current)
    refresh_s: int | None = 10


def number(value: Any, unit: str, decimals: int | None = None) -> str:
    """A number as Vietnamese readers write it: 1.234 and 98,6%."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if unit == "percentunit":
        text = f"{float(value) * 100:.{1 if decimals is None else decimals}f}%"
    elif isinstance(value, float):
        text = f"{value:,.{1 if decimals is None else decimals}f}"
    elif isinstance(value, int):
        text = f"{value:,d}"
    else:
        return str(value)
    return text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")


def _colour(value: Any, steps: Sequence[tuple[float | None, str]]) -> str:
    chosen = steps[0][1]
    for threshold, colour in steps:
        if threshold is not None and isinstance(value, (int, float)) and value >= threshold:
            chosen = colour
    return chosen


def _stat(result: Result) -> str:
    row = result.rows[0] if result.rows else [None] * len(result.columns)
    cells = []
    for column, value in zip(result.columns, row):
        colour = _colour(value, result.panel.thresholds)
        raw = "" if value is None else repr(value)
        cells.append(f'<div class="stat {colour}" data-field="{html.escape(column)}" data-value="{html.escape(raw)}">'
                     f'<span class="value">{number(value, result.panel.unit, result.panel.decimals)}</span>'
                     f'<span class="name">{html.escape(column)}</span></div>')
    return f'<div class="stats">{"".join(cells)}</div>'


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{number(value, "short")}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _table(result: Result) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in result.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in result.rows)
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _body(result: Result, placed: Placed) -> str:
    if result.error:
        return f'<div class="error">Lỗi truy vấn: {html.escape(result.error)}</div>'
    if not result.rows and result.panel.viz != "stat":
        return '<div class="empty">Không có dữ liệu</div>'
    if result.panel.viz == "stat":
        return _stat(result)
    if result.panel.viz == "table":
        return _table(result)
    width = placed.w * (COLUMN_PX + GAP_PX) - GAP_PX - 28
    height = placed.h * (ROW_PX + GAP_PX) - GAP_PX - 52
    return chart(result, width, height)


def panel_html(placed: Placed, result: Result) -> str:
    p = result.panel
    style = f"grid-column:{placed.x + 1}/span {placed.w};grid-row:{placed.y + 1}/span {placed.h}"
    return (f'<section class="panel" data-panel="{p.key}" data-viz="{p.viz}" style="{style}" '
            f'title="{html.escape(p.title_en + ". " + p.description)}">'
            f'<h2>{html.escape(p.title)}<small>{html.escape(p.title_en)}</small></h2>'
            f'<div class="body">{_body(result, placed)}</div></section>')


def grid(view: View, placed_results: Sequence[tuple[Placed, Result]]) -> str:
    return '<main id="grid">' + "".join(panel_html(pl, r) for pl, r in placed_results) + "</main>"


def _clock(view: View) -> str:
    local = view.as_of.astimezone(VN_TZ)
    return (f'<div class="clock" id="clock" data-as-of="{view.as_of.isoformat()}">số liệu đến'
            f'<b>{local:%H:%M %d/%m/%Y}</b><span id="status"></span></div>')


def _selector(view: View) -> str:
    if view.dashboard.scope != "commune":
        return ""
    options = "".join(f'<option value="{html.escape(code)}"{" selected" if code == view.commune else ""}>'
                      f"{html.escape(name)}</option>" for code, name in view.communes)
    return (f'<form method="get"><label>Xã/phường <select name="commune" onchange="this.form.submit()">'
            f"{options}</select></label></form>")


def document(view: View, placed_results: Sequence[tuple[Placed, Result]]) -> str:
    d = view.dashboard
    nav = "".join(f'<a href="{html.escape(href)}"{" class=on" if on else ""}>{html.escape(label)}</a>'
                  for label, href, on in view.links)
    script = f"<script>{_SCRIPT.replace('REFRESH', str(view.refresh_s))}</script>" if view.refresh_s else ""
    style = _STYLE.replace("ROW", f"{ROW_PX}px").replace("GAP", str(GAP_PX))
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(d.title)} · IOC</title><style>{style}</style></head>"
            f'<body data-dashboard="{d.uid}"><header><h1>{html.escape(d.title)}<span class="en">{html.escape(d.title_en)}</span></h1>'
            f"<nav>{nav}</nav>{_selector(view)}{_clock(view)}</header>"
            f"{grid(view, placed_results)}{script}</body></html>")


def fragment(view: View, placed_results: Sequence[tuple[Placed, Result]]) -> str:
    """What the live page fetches every refresh: the clock and the grid."""
    return f"<!doctype html><html><body>{_clock(view)}{grid(view, placed_results)}</body></html>"
