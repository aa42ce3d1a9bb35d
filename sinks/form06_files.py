"""Biểu 06 written to a file: the identity checked first, then an .xlsx workbook or a .csv sheet."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from onestop.periods import ReportPeriod
from onestop.report import Form06Report
from sinks.form06_sheet import COLUMNS, FIELDS, SheetRow, check_identity, sheet_rows
from sinks.form06_xlsx import workbook
from sinks.formats import atomic_output


def write_report(report: Form06Report, out: Path, *, province: str, period: ReportPeriod,
                 names: dict[str, str]) -> list[SheetRow]:
    """Check the identity, then write ``out`` (.xlsx or .csv); return the rows written."""
    rows = sheet_rows(report, names)
    check_identity(rows)
    suffix = out.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise ValueError(f"cannot write {out.name}: the report is written as .xlsx or .csv")
    with atomic_output(out) as sink:
        if suffix == ".csv":
            sink.write(_csv(rows))
        else:
            workbook(rows, report, province=province, period=period).save(sink)
    return rows


def _csv(rows: list[SheetRow]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["STT", "Mã đơn vị", "Đơn vị / Lĩnh vực", "Loại dòng",
                     *(f"({n}) {group}{' - ' + sub if sub else ''} - {head}" for n, group, sub, head, _ in COLUMNS)])
    kinds = {"commune": "Cộng đơn vị", "field": "Lĩnh vực", "total": "Tổng cộng"}
    for r in rows:
        writer.writerow([r.number, r.commune_code, r.label, kinds[r.kind], *(getattr(r.counts, f) for f in FIELDS)])
    return text.getvalue().encode("utf-8-sig")  # with a BOM, so spreadsheet programs read it as UTF-8
