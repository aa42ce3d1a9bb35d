"""The XLSX layout of Biểu 06: title block, three header rows with merged groups, column numbers, data, notes."""

from __future__ import annotations

from itertools import groupby

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

from onestop.communes import province_name
from onestop.periods import ReportPeriod
from onestop.report import Form06Report
from sinks.form06_sheet import COLUMNS, FORM, IDENTITY_NOTE, TITLE, SheetRow, generated_note

HEADER_TOP = 7  # first of the three header rows; the column numbers follow them, then the data
_THIN = Side(style="thin")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)
_BOLD = Font(bold=True)


def workbook(rows: list[SheetRow], report: Form06Report, *, province: str, period: ReportPeriod) -> Workbook:
    book = Workbook()
    sheet = book.active
    sheet.title = "Biểu 06"
    last = 2 + len(COLUMNS)
    _title_block(sheet, last, province, period)
    _headers(sheet)
    top = HEADER_TOP + 4
    for i, row in enumerate(rows):
        _data_row(sheet, top + i, row)
    foot = top + len(rows) + 1
    sheet.cell(foot, 1, f"Ghi chú: {IDENTITY_NOTE}.")
    sheet.cell(foot + 1, 1, "Hàng theo đơn vị giải quyết (xã, phường, đặc khu) và lĩnh vực; hồ sơ đang giải quyết "
                            "tính đến hết ngày cuối kỳ; (14), (15) là một phần của (11).")
    sheet.cell(foot + 2, 1, generated_note(report))
    sheet.column_dimensions["A"].width = 7
    sheet.column_dimensions["B"].width = 42
    for col in range(3, last + 1):
        sheet.column_dimensions[get_column_letter(col)].width = 12
    sheet.freeze_panes = sheet.cell(top, 3)
    return book


def _title_block(sheet, last: int, province: str, period: ReportPeriod) -> None:  # type: ignore[no-untyped-def]
    name = province_name(province)
    unit = name if name.startswith("Thành phố") else f"tỉnh {name}"  # five centrally run cities, 29 provinces
    sheet.cell(1, 1, f"UBND {unit.upper()}").font = _BOLD
    sheet.cell(1, last - 3, FORM).font = _BOLD
    sheet.merge_cells(start_row=1, start_column=last - 3, end_row=1, end_column=last)
    lines = (TITLE, f"Kỳ báo cáo: {period.label} ({period.span})",
             f"Đơn vị báo cáo: Ủy ban nhân dân {unit[0].lower() + unit[1:]}. Đơn vị nhận báo cáo: Văn phòng Chính phủ.",
             "Đơn vị tính: Số hồ sơ thủ tục hành chính.")
    for r, text in enumerate(lines, start=2):
        cell = sheet.cell(r, 1, text)
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
        cell.font = _BOLD if r == 2 else Font(italic=r > 2)
        sheet.merge_cells(start_row=r, start_column=1, end_row=r, end_column=last)
    sheet.row_dimensions[2].height = 32


def _headers(sheet) -> None:  # type: ignore[no-untyped-def]
    top = HEADER_TOP
    _box(sheet, top, 1, top + 2, 1, "STT")
    _box(sheet, top, 2, top + 2, 2, "Đơn vị, lĩnh vực giải quyết")
    columns = [(2 + i, *c) for i, c in enumerate(COLUMNS, start=1)]
    for group, members in groupby(columns, key=lambda c: c[2]):
        members = list(members)
        _box(sheet, top, members[0][0], top, members[-1][0], group)
        for sub, under in groupby(members, key=lambda c: c[3]):
            under = list(under)
            if sub is None:
                for col, *_, head, _field in under:
                    _box(sheet, top + 1, col, top + 2, col, head)
                continue
            _box(sheet, top + 1, under[0][0], top + 1, under[-1][0], sub)
            for col, *_, head, _field in under:
                _box(sheet, top + 2, col, top + 2, col, head)
    for col in range(1, 3 + len(COLUMNS)):
        number = col if col <= 2 else COLUMNS[col - 3][0]
        cell = sheet.cell(top + 3, col, f"({number})")
        cell.alignment, cell.border, cell.font = _CENTRE, _BOX, Font(italic=True)
    for r in range(top, top + 3):
        sheet.row_dimensions[r].height = 36


def _box(sheet, r1: int, c1: int, r2: int, c2: int, text: str) -> None:  # type: ignore[no-untyped-def]
    for r in range(r1, r2 + 1):
        for c in range(c1, c2 + 1):
            sheet.cell(r, c).border = _BOX
    cell = sheet.cell(r1, c1, text)
    cell.alignment, cell.font = _CENTRE, _BOLD
    if (r1, c1) != (r2, c2):
        sheet.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)


def _data_row(sheet, r: int, row: SheetRow) -> None:  # type: ignore[no-untyped-def]
    values = [row.number or None, row.label, *(getattr(row.counts, c[4]) for c in COLUMNS)]
    for c, value in enumerate(values, start=1):
        cell = sheet.cell(r, c, value)
        cell.border = _BOX
        if row.kind != "field":
            cell.font = _BOLD
        if c == 1:
            cell.alignment = Alignment(horizontal="center")
