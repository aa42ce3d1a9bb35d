"""Biểu 06 files: the identity is checked on every row before writing; a broken report leaves no file."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest
from openpyxl import load_workbook
from test_report import CAL, CATALOGUE, MAY, MAY_END, MAY_START

from onestop.periods import parse_period
from onestop.report import form06
from sinks.form06_files import write_report
from sinks.form06_sheet import UnbalancedReport, check_identity, sheet_rows

NAMES = {"18754": "Phường Sông Trí", "03595": "Xã Than Uyên"}
PERIOD = parse_period("2025-05")


def report():
    return form06(MAY, MAY_START, MAY_END, calendar=CAL, catalogue=CATALOGUE, group_by=("handling_commune", "field"))


def test_the_period_is_may_in_asia_ho_chi_minh():
    assert (PERIOD.start, PERIOD.end) == (MAY_START, MAY_END)


@pytest.mark.parametrize("text, start, end, label", [
    ("2026-10", (2026, 10, 1), (2026, 11, 1), "Tháng 10 năm 2026"),
    ("2026-12", (2026, 12, 1), (2027, 1, 1), "Tháng 12 năm 2026"),
    ("2026-Q4", (2026, 10, 1), (2027, 1, 1), "Quý IV năm 2026"),
    ("2026-H1", (2026, 1, 1), (2026, 7, 1), "6 tháng đầu năm 2026"),
    ("2026", (2026, 1, 1), (2027, 1, 1), "Năm 2026"),
])
def test_report_periods(text, start, end, label):
    period = parse_period(text)
    assert (period.start.timetuple()[:3], period.end.timetuple()[:3], period.label) == (start, end, label)
    assert period.start.utcoffset().total_seconds() == 7 * 3600


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "26-10", "2026/10", ""])
def test_a_period_that_is_not_one_is_refused(text):
    with pytest.raises(ValueError, match="period"):
        parse_period(text)


def test_rows_are_communes_with_their_fields_then_the_total():
    rows = sheet_rows(report(), NAMES)
    assert [(r.kind, r.number, r.label) for r in rows] == [
        ("commune", "I", "Xã Than Uyên (03595)"), ("field", "1", "Hộ tịch"),
        ("commune", "II", "Phường Sông Trí (18754)"), ("field", "1", "Hộ kinh doanh"),
        ("total", "", "Tổng cộng")]
    # Sông Trí handles 9 of May's dossiers (A L B C D K E I J), all in one field, so its row is that
    # field's; Than Uyên handles M, resolved before due. G closed in April, H comes in June, F was never received.
    assert rows[2].counts.received == rows[3].counts.received == 9
    assert (rows[0].counts.received, rows[0].counts.resolved_before_due) == (1, 1)
    assert rows[-1].counts.received == 10


def test_a_balanced_report_is_written_and_reads_back(tmp_path):
    out = tmp_path / "b06.xlsx"
    write_report(report(), out, province="42", period=PERIOD, names=NAMES)
    grid = list(load_workbook(out).active.iter_rows(values_only=True))
    total = next(r for r in grid if r[1] == "Tổng cộng")
    # received; carried over (A L); online (B M K I); in person or post (C D E J); resolved (A B M); before due (M)
    assert total[2:8] == (10, 2, 4, 4, 3, 1)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
@pytest.mark.parametrize("breakage", [
    dict(received=+1),  # one dossier received that lands nowhere
    dict(resolved_on_due=+1, resolved=+1),  # one dossier counted twice
    dict(in_progress_overdue=+1),  # a group's total that is not the sum of its columns
])
def test_a_report_that_breaks_the_identity_is_refused_and_leaves_no_file(tmp_path, suffix, breakage):
    good = report()
    row = good.rows[-1]
    bad = msgspec.structs.replace(row, **{k: getattr(row, k) + v for k, v in breakage.items()})
    broken = msgspec.structs.replace(good, rows=(*good.rows[:-1], bad))
    with pytest.raises(UnbalancedReport, match="breaks the Form 06 identity"):
        write_report(broken, tmp_path / f"b06{suffix}", province="42", period=PERIOD, names=NAMES)
    assert list(tmp_path.iterdir()) == []


def test_the_total_row_is_checked_too():
    good = report()
    broken = msgspec.structs.replace(good, total=msgspec.structs.replace(good.total, withdrawn=good.total.withdrawn + 1))
    with pytest.raises(UnbalancedReport, match="Tổng cộng"):
        check_identity(sheet_rows(broken, NAMES))
