"""`onestop report form06` on a seeded store, read back and compared with the pure Form 06 function.

The expected report is computed here, independently: the domain's ``form06``
over the simulated events themselves (not read back from ClickHouse), with
the communes' totals from a second ``form06`` grouped by commune only.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from datetime import date

import msgspec
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from onestop.catalogue import default_catalogue
from onestop.periods import parse_period
from onestop.report import form06
from onestop.settings import Settings, settings_env
from onestop.workcal import default_calendar
from producers.simulator import SimulationConfig, simulate
from seed import seed_events

pytestmark = pytest.mark.integration

PERIOD = parse_period("2026-10")
# Hà Tĩnh from mid-September to past the end of October: carried over, new, resolved, still open, and later.
HA_TINH = SimulationConfig(province_code="42", communes=6, dossiers=2500, seed=606, start=date(2026, 9, 14), days=55)
LAI_CHAU = SimulationConfig(province_code="12", communes=2, dossiers=300, seed=607, start=date(2026, 9, 14), days=55)
COUNTS = ("received", "carried_over", "new_online", "new_in_person_or_post", "resolved", "resolved_before_due",
          "resolved_on_due", "resolved_overdue", "in_progress", "in_progress_within_due", "in_progress_overdue",
          "waiting_supplement", "waiting_financial", "stopped", "refused", "withdrawn")
NUMBER_OF = dict(zip(COUNTS, range(3, 19)))  # the form's column numbers (3)…(18)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("form06-home"), clickhouse_dsn="")
    ha_tinh = list(simulate(HA_TINH))
    seed_events(settings, ha_tinh + list(simulate(LAI_CHAU)))  # another province's dossiers must stay out
    return settings, ha_tinh


def expected(events):
    args = dict(calendar=default_calendar(), catalogue=default_catalogue())
    detail = form06(events, PERIOD.start, PERIOD.end, group_by=("handling_commune", "field"), **args)
    units = form06(events, PERIOD.start, PERIOD.end, group_by=("handling_commune",), **args)
    rows = []
    for unit in units.rows:
        code = unit.group["handling_commune"]
        rows.append(("commune", code, _counts(unit)))
        rows += [("field", r.group["field"], _counts(r)) for r in detail.rows if r.group["handling_commune"] == code]
    rows.append(("total", "", _counts(detail.total)))
    return rows


def _counts(row) -> dict[str, int]:
    return {c: getattr(row, c) for c in COUNTS}


def run_report(settings: Settings, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onestop_cli", "report", "form06", "--province", "42",
                           "--period", "2026-10", "--out", str(out)],
                          env={**settings_env(settings), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300)


def read_xlsx(path) -> tuple[list[tuple], str]:
    sheet = load_workbook(path).active
    grid = [tuple(r) for r in sheet.iter_rows(values_only=True)]
    numbers_at = next(i for i, r in enumerate(grid) if r[0] == "(1)")
    column_of = {int(v.strip("()")): j for j, v in enumerate(grid[numbers_at]) if v}
    rows = []
    for r in grid[numbers_at + 1:]:
        if r[1] is None:
            break
        kind = "total" if r[1] == "Tổng cộng" else ("field" if str(r[0]).isdigit() else "commune")
        key = re.search(r"\((\d{5})\)$", r[1]).group(1) if kind == "commune" else ("" if kind == "total" else r[1])
        rows.append((kind, key, {c: r[column_of[n]] for c, n in NUMBER_OF.items()}))
    text = "\n".join(" ".join(str(v) for v in r if v is not None) for r in grid[:numbers_at])
    return rows, text


def test_the_xlsx_matches_the_pure_form06_function_on_the_same_events(seeded, tmp_path):
    settings, events = seeded
    out = tmp_path / "bieu06.xlsx"
    done = run_report(settings, out)
    assert done.returncode == 0, done.stderr
    rows, header = read_xlsx(out)
    want = expected(events)
    assert rows == want
    assert sum(kind == "commune" for kind, *_ in rows) == 6
    total = want[-1][2]
    assert total["carried_over"] and total["new_online"] and total["resolved"] and total["in_progress"]  # a real mix
    for words in ("Biểu số 06/VPCP/KSTT", "Tháng 10 năm 2026", "từ ngày 01/10/2026 đến ngày 31/10/2026",
                  "UBND TỈNH HÀ TĨNH", "Số hồ sơ nhận giải quyết", "Số kỳ trước chuyển qua", "Trực tuyến",
                  "Kết quả giải quyết", "Số hồ sơ đã giải quyết", "Trả trước hạn", "Trả đúng thời hạn",
                  "Trả quá hạn", "Số hồ sơ đang giải quyết", "Trong hạn", "Quá hạn"):
        assert words in header, words


def test_the_csv_holds_the_same_rows(seeded, tmp_path):
    settings, events = seeded
    out = tmp_path / "bieu06.csv"
    done = run_report(settings, out)
    assert done.returncode == 0, done.stderr
    table = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    header, body = table[0], table[1:]
    at = {n: next(j for j, h in enumerate(header) if h.startswith(f"({n}) ")) for n in NUMBER_OF.values()}
    kinds = {"Cộng đơn vị": "commune", "Lĩnh vực": "field", "Tổng cộng": "total"}
    got = [(kinds[r[3]], r[1] if r[3] == "Cộng đơn vị" else ("" if r[3] == "Tổng cộng" else r[2]),
            {c: int(r[at[n]]) for c, n in NUMBER_OF.items()}) for r in body]
    assert got == expected(events)


def test_a_report_that_breaks_the_identity_is_refused_and_not_written(seeded, tmp_path, monkeypatch):
    settings, _ = seeded
    import sinks.form06_source as source

    def broken(*args, **kwargs):
        report = form06(*args, **kwargs)
        first = report.rows[0]
        bad = msgspec.structs.replace(first, resolved_on_due=first.resolved_on_due + 1,
                                      resolved=first.resolved + 1)  # one dossier counted twice
        return msgspec.structs.replace(report, rows=(bad, *report.rows[1:]))

    monkeypatch.setattr(source, "form06", broken)
    monkeypatch.setattr("onestop_cli.report.get_settings", lambda: settings)
    from onestop_cli import app

    out = tmp_path / "bieu06.xlsx"
    result = CliRunner().invoke(app, ["report", "form06", "--province", "42", "--period", "2026-10", "--out", str(out)])
    assert result.exit_code == 1
    assert "breaks the Form 06 identity" in result.output and "nothing was written" in result.output
    assert not out.exists() and not list(tmp_path.iterdir())
