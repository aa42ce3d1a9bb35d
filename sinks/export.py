"""Exports of a table's rows over a time range, streamed from the store into a Parquet or CSV file.

The rows are read with one streaming query (no ``ORDER BY``, which would make
ClickHouse sort the whole range in memory) and written batch by batch, so the
exporting process holds one batch at a time however large the range is. Tables
that may hold a row twice until ClickHouse merges them (ReplacingMergeTree)
are read with ``FINAL``. The file appears only once complete.

``--since`` / ``--until`` select ``since <= t < until`` on the table's time
column (``TIME_COLUMNS``; for other tables the first date-time column of the
sorting key, or ``--time-column``). A date or a time without an offset is read
in Asia/Ho_Chi_Minh; ``Date`` columns compare by that calendar date.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sinks import schema
from sinks.clickhouse import StoreError
from sinks.formats import atomic_output, write_batches
from sinks.query_service import query_rows
from sinks.readonly import Reader

VN = ZoneInfo("Asia/Ho_Chi_Minh")
EXPORT_FORMATS = ("parquet", "csv")
TIME_COLUMNS = {
    schema.EVENTS: "occurred_at",
    schema.ALERTS: "fired_at",
    schema.DEAD_LETTERS: "rejected_at",
    schema.THROUGHPUT_PARTS: "bucket_start",
    schema.ONTIME_PARTS: "period_start",
    schema.BACKLOG_PARTS: "as_of",
}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ExportPlan:
    sql: str
    parameters: dict[str, Any]
    table: str
    time_column: str | None


@dataclass(frozen=True)
class ExportResult:
    rows: int
    seconds: float
    path: Path


def parse_instant(text: str) -> datetime:
    """``2026-10-01``, ``2026-10-01T08:00`` (Asia/Ho_Chi_Minh) or ``2026-10-01T01:00Z`` (as given)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or date-time (e.g. 2026-10-01 or 2026-10-01T08:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=VN)


def plan_export(reader: Reader, database: str, table: str, *, since: datetime | None = None,
                until: datetime | None = None, time_column: str | None = None) -> ExportPlan:
    """The streaming query for ``table`` between ``since`` and ``until``; checks the table and its column."""
    for name in (database, table, time_column or "x"):
        if not _IDENTIFIER.match(name):
            raise StoreError(f"{name!r} is not a table or column name")
    _, found = query_rows(reader, "SELECT engine, sorting_key FROM system.tables "
                                  "WHERE database = {db:String} AND name = {t:String}", {"db": database, "t": table})
    if not found:
        _, names = query_rows(reader, "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name",
                              {"db": database})
        raise StoreError(f"no table {database}.{table}; the tables are: {', '.join(n for (n,) in names)}")
    engine, sorting_key = found[0]
    _, columns = query_rows(reader, "SELECT name, type FROM system.columns WHERE database = {db:String} "
                                    "AND table = {t:String} ORDER BY position", {"db": database, "t": table})
    types = dict(columns)
    column = time_column or TIME_COLUMNS.get(table) or _time_column(sorting_key, columns)
    if (since or until) and column is None:
        raise StoreError(f"{database}.{table} has no date-time column to select a range on; give --time-column")
    if column is not None and column not in types:
        raise StoreError(f"{database}.{table} has no column {column}; its columns: {', '.join(types)}")
    final = " FINAL" if "Replacing" in engine else ""
    where, params = _range(column, types.get(column or "", ""), since, until)
    sql = f"SELECT * FROM `{database}`.`{table}`{final}{where}"
    return ExportPlan(sql=sql, parameters=params, table=f"{database}.{table}", time_column=column)


def _time_column(sorting_key: str, columns: list[tuple[str, str]]) -> str | None:
    timed = [name for name, kind in columns if re.search(r"\bDate(Time)?(32|64)?\b", kind)]
    keyed = [c.strip() for c in sorting_key.split(",")]
    return next((c for c in keyed if c in timed), timed[0] if timed else None)


def _range(column: str | None, kind: str, since: datetime | None,
           until: datetime | None) -> tuple[str, dict[str, Any]]:
    if column is None or (since is None and until is None):
        return "", {}
    day = "DateTime" not in kind  # Date and Date32: compare by the calendar date in Asia/Ho_Chi_Minh
    placeholder = "Date" if day else "DateTime64(3, 'UTC')"
    conditions, params = [], {}
    for name, op, value in (("since", ">=", since), ("until", "<", until)):
        if value is not None:
            conditions.append(f"`{column}` {op} {{{name}:{placeholder}}}")
            params[name] = value.astimezone(VN).date() if day else value.astimezone(timezone.utc)
    return " WHERE " + " AND ".join(conditions), params


def export(reader: Reader, plan: ExportPlan, out: Path, fmt: str) -> ExportResult:
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    started = time.monotonic()
    with atomic_output(out) as sink, reader.stream(plan.sql, plan.parameters) as batches:
        rows = write_batches(batches, fmt, sink)
    return ExportResult(rows=rows, seconds=time.monotonic() - started, path=out)


def format_for(out: Path, fmt: str | None) -> str:
    """The format asked for, or the one the file name says."""
    if fmt:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in EXPORT_FORMATS:
        return suffix
    raise ValueError(f"cannot tell the format from {out.name}; give --format parquet or --format csv")
