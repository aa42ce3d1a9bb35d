"""Biểu 06 (Form 06/VPCP/KSTT) as a spreadsheet (XLSX, openpyxl) or CSV, from the pure ``onestop.report`` result.

Rows: for each handling commune a row with its totals (STT I, II, …), then a
row per field (lĩnh vực, STT 1, 2, …), and the province's total at the end.
Columns: the form's groups with their Vietnamese headers and numbers (1)–(13),
then the in-progress sub-buckets and the dossiers closed without a result,
which the identity needs:

    (3) received = (7) resolved + (11) in progress + (16) stopped + (17) refused + (18) withdrawn

``check_identity`` verifies it (and each group's own total) on every row
before anything is written; a report that breaks it is refused whole, and no
file is left behind.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Iterable

import msgspec

from onestop.periods import ReportPeriod
from onestop.report import Form06Report, Form06Row

FORM = "Biểu số 06/VPCP/KSTT"
TITLE = ("TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH TẠI CƠ QUAN, ĐƠN VỊ TRỰC TIẾP GIẢI QUYẾT "
         "THỦ TỤC HÀNH CHÍNH")
# (column number, the group, the sub-group (or None), the column's own header, the Form06Row field)
COLUMNS: tuple[tuple[int, str, str | None, str, str], ...] = (
    (3, "Số hồ sơ nhận giải quyết", None, "Tổng số", "received"),
    (4, "Số hồ sơ nhận giải quyết", None, "Trong đó: Số kỳ trước chuyển qua", "carried_over"),
    (5, "Số hồ sơ nhận giải quyết", "Số mới tiếp nhận", "Trực tuyến", "new_online"),
    (6, "Số hồ sơ nhận giải quyết", "Số mới tiếp nhận", "Trực tiếp, dịch vụ bưu chính", "new_in_person_or_post"),
    (7, "Kết quả giải quyết", "Số hồ sơ đã giải quyết", "Tổng số", "resolved"),
    (8, "Kết quả giải quyết", "Số hồ sơ đã giải quyết", "Trả trước hạn", "resolved_before_due"),
    (9, "Kết quả giải quyết", "Số hồ sơ đã giải quyết", "Trả đúng thời hạn", "resolved_on_due"),
    (10, "Kết quả giải quyết", "Số hồ sơ đã giải quyết", "Trả quá hạn", "resolved_overdue"),
    (11, "Kết quả giải quyết", "Số hồ sơ đang giải quyết", "Tổng số", "in_progress"),
    (12, "Kết quả giải quyết", "Số hồ sơ đang giải quyết", "Trong hạn", "in_progress_within_due"),
    (13, "Kết quả giải quyết", "Số hồ sơ đang giải quyết", "Quá hạn", "in_progress_overdue"),
    (14, "Hồ sơ đang giải quyết chờ công dân", None, "Chờ bổ sung", "waiting_supplement"),
    (15, "Hồ sơ đang giải quyết chờ công dân", None, "Chờ thực hiện nghĩa vụ tài chính", "waiting_financial"),
    (16, "Hồ sơ kết thúc không trả kết quả", None, "Dừng xử lý", "stopped"),
    (17, "Hồ sơ kết thúc không trả kết quả", None, "Từ chối giải quyết", "refused"),
    (18, "Hồ sơ kết thúc không trả kết quả", None, "Công dân rút hồ sơ", "withdrawn"),
)
FIELDS = tuple(c[4] for c in COLUMNS)
IDENTITY_NOTE = "(3) = (7) + (11) + (16) + (17) + (18); (3) = (4) + (5) + (6); (7) = (8) + (9) + (10); (11) = (12) + (13)"


class UnbalancedReport(ValueError):
    """The report breaks the Form 06 identity; it is a bug and must not be filed."""


class SheetRow(msgspec.Struct, frozen=True):
    kind: str  # commune, field or total
    number: str  # STT: I, II, … for communes; 1, 2, … for fields; empty for the total
    commune_code: str
    label: str
    counts: Form06Row


def problems(row: Form06Row) -> list[str]:
    found = []
    if not row.balances:
        found.append(f"received {row.received} != resolved {row.resolved} + in progress {row.in_progress} + "
                     f"stopped {row.stopped} + refused {row.refused} + withdrawn {row.withdrawn}")
    parts = {"received": ("carried_over", "new_online", "new_in_person_or_post"),
             "resolved": ("resolved_before_due", "resolved_on_due", "resolved_overdue"),
             "in_progress": ("in_progress_within_due", "in_progress_overdue")}
    for total, pieces in parts.items():
        if getattr(row, total) != sum(getattr(row, p) for p in pieces):
            found.append(f"{total} {getattr(row, total)} != {' + '.join(f'{p} {getattr(row, p)}' for p in pieces)}")
    return found


def sheet_rows(report: Form06Report, names: dict[str, str]) -> list[SheetRow]:
    """Commune rows (their fields added up), field rows, and the total, in commune code and field order."""
    by_commune: dict[str, list[Form06Row]] = {}
    for row in report.rows:
        by_commune.setdefault(row.group["handling_commune"], []).append(row)
    out = []
    for i, (code, rows) in enumerate(sorted(by_commune.items()), start=1):
        out.append(SheetRow("commune", _roman(i), code, f"{names.get(code, 'Đơn vị')} ({code})", added_up(rows)))
        out += [SheetRow("field", str(j), code, r.group["field"], r) for j, r in enumerate(rows, start=1)]
    out.append(SheetRow("total", "", "", "Tổng cộng", report.total))
    return out


def added_up(rows: Iterable[Form06Row]) -> Form06Row:
    total: Counter = Counter()
    for row in rows:
        total.update({f: getattr(row, f) for f in FIELDS})
    return Form06Row(group={}, **{f: total[f] for f in FIELDS})


def check_identity(rows: list[SheetRow]) -> None:
    broken = [f"{r.label}: {'; '.join(p)}" for r in rows if (p := problems(r.counts))]
    if broken:
        shown = "\n  ".join(broken[:10]) + (f"\n  … and {len(broken) - 10} more rows" if len(broken) > 10 else "")
        raise UnbalancedReport(f"the report breaks the Form 06 identity in {len(broken)} rows; "
                               f"nothing was written:\n  {shown}")


def generated_note(report: Form06Report) -> str:
    made = datetime.now(timezone.utc).astimezone(report.start.tzinfo)
    return (f"Lập lúc {made:%H:%M ngày %d/%m/%Y} từ sự kiện hồ sơ; lịch làm việc {report.calendar_version}; "
            f"danh mục thủ tục {report.catalogue_version or 'mặc định'}.")


def _roman(n: int) -> str:
    numerals = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, numeral in numerals:
        while n >= value:
            out, n = out + numeral, n - value
    return out
