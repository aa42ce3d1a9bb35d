"""Reporting periods of the official forms: a month, a quarter, a half-year or a year, in Asia/Ho_Chi_Minh.

``2026-10`` (tháng), ``2026-Q4`` (quý), ``2026-H2`` (6 tháng), ``2026`` (năm).
A period is ``[start, end)`` from local midnight to local midnight.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import msgspec

from onestop.workcal import VN_TZ

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
_FORMS = "YYYY-MM (month), YYYY-Qn (quarter), YYYY-Hn (half-year) or YYYY (year)"


class ReportPeriod(msgspec.Struct, frozen=True):
    name: str  # as given: 2026-10, 2026-Q4, 2026-H2, 2026
    start: datetime
    end: datetime
    label: str  # how the form names it, in Vietnamese

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    @property
    def span(self) -> str:
        """e.g. ``từ ngày 01/10/2026 đến ngày 31/10/2026``."""
        return f"từ ngày {self.start.date():%d/%m/%Y} đến ngày {self.last_day:%d/%m/%Y}"


def parse_period(text: str) -> ReportPeriod:
    text = text.strip()
    match = re.fullmatch(r"(\d{4})(?:-(?:(\d{2})|[Qq]([1-4])|[Hh]([12])))?", text)
    if not match:
        raise ValueError(f"period {text!r}: expected {_FORMS}")
    year = int(match.group(1))
    month, quarter, half = (int(g) if g else None for g in match.groups()[1:])
    if month is not None:
        if not 1 <= month <= 12:
            raise ValueError(f"period {text!r}: month {month} does not exist")
        first, months, label = month, 1, f"Tháng {month} năm {year}"
    elif quarter is not None:
        first, months, label = 3 * quarter - 2, 3, f"Quý {_ROMAN[quarter]} năm {year}"
    elif half is not None:
        first, months, label = 6 * half - 5, 6, f"6 tháng {'đầu' if half == 1 else 'cuối'} năm {year}"
    else:
        first, months, label = 1, 12, f"Năm {year}"
    start = datetime(year, first, 1, tzinfo=VN_TZ)
    after = first + months
    end = datetime(year + (after - 1) // 12, (after - 1) % 12 + 1, 1, tzinfo=VN_TZ)
    return ReportPeriod(name=text, start=start, end=end, label=label)
