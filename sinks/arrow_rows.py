"""Rows of a table as one Arrow table, typed by the table's ClickHouse columns, for bulk inserts.

The writer checks each row before it inserts it (``sinks.columns.row_problem``),
so one bad value is set apart instead of failing the insert. A bulk writer
(``onestop rebuild``) builds whole columns instead: Arrow converts them in C,
and a value that does not fit its type makes the conversion fail. Only then
are the rows checked one by one, and the ones that do not fit are set apart,
exactly as the writer would have refused them.

Times and dates are handed to Arrow as integers (milliseconds, days since
1970), counted here, so that they follow the writer: milliseconds are floored
as its encoder floors them, and a value outside the column's range
(``DateTime64``: 1900–2299, ``Date``: 1970–2149), which Arrow would take,
fails the conversion like any other value that does not fit.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from typing import Any, Sequence

import pyarrow as pa

from sinks.columns import row_problem, table_types

_TIMESTAMP = pa.timestamp("ms", tz="UTC")  # DateTime64(3, 'UTC')
_SCALARS = {
    "String": pa.string(), "Bool": pa.bool_(), "Date": pa.date32(),
    "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(), "UInt64": pa.uint64(),
    "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
}


def arrow_type(column_type: str) -> pa.DataType:
    t = column_type.replace(" ", "")
    for wrapper in ("Nullable(", "LowCardinality("):
        if t.startswith(wrapper) and t.endswith(")"):
            return arrow_type(t[len(wrapper):-1])
    if t.startswith("DateTime64("):
        return _TIMESTAMP
    if t in _SCALARS:
        return _SCALARS[t]
    raise ValueError(f"no Arrow type for ClickHouse type {column_type!r}; add one to sinks/arrow_rows.py")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_MS_RANGE = ((datetime(1900, 1, 1, tzinfo=timezone.utc) - _EPOCH) // _MS,  # DateTime64: 1900 .. 2299
             (datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - _EPOCH) // _MS)
_DAY0 = date(1970, 1, 1).toordinal()
_DAY_RANGE = (0, date(2149, 6, 6).toordinal() - _DAY0)  # Date: 1970-01-01 .. 2149-06-06


def _millis(value: datetime | None) -> int | None:
    if value is None:
        return None
    ms = ((value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)) - _EPOCH) // _MS
    if not _MS_RANGE[0] <= ms <= _MS_RANGE[1]:
        raise ValueError(f"{value} is outside DateTime64's range")
    return ms


def _days(value: date | None) -> int | None:
    if value is None:
        return None
    days = (value.date() if isinstance(value, datetime) else value).toordinal() - _DAY0
    if not _DAY_RANGE[0] <= days <= _DAY_RANGE[1]:
        raise ValueError(f"{value} is outside Date's range")
    return days


def _column(values: Sequence[Any], to: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(to):
        return pa.array([_millis(v) for v in values], type=pa.int64()).cast(to)
    if pa.types.is_date32(to):
        return pa.array([_days(v) for v in values], type=pa.int32()).cast(to)
    return pa.array(values, type=to)


def warm() -> None:
    """Load what pyarrow loads the first time it converts a Python list (its pandas shim, seconds of
    imports): a bulk writer does it once, before it forks its workers, instead of once in each."""
    pa.array([0], type=pa.int64())


def schema_of(table: str, columns: Sequence[str]) -> pa.Schema:
    types = table_types(table)
    return pa.schema([pa.field(name, arrow_type(types[name])) for name in columns])


def arrow_table(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[pa.Table, list[int]]:
    """(the rows as an Arrow table, the indexes of the rows set apart because a value does not fit)."""
    schema = schema_of(table, columns)
    try:
        return _build(schema, rows), []
    except (pa.ArrowException, TypeError, ValueError, OverflowError, AttributeError):
        pass
    kept, refused = [], []
    for i, row in enumerate(rows):
        (refused if row_problem(table, columns, row) is not None else kept).append(i)
    return _build(schema, [rows[i] for i in kept]), refused


def _build(schema: pa.Schema, rows: Sequence[Sequence[Any]]) -> pa.Table:
    if not rows:
        return schema.empty_table()
    columns = list(zip(*rows))
    return pa.Table.from_arrays([_column(col, f.type) for col, f in zip(columns, schema)], schema=schema)


def to_ipc(data: pa.Table) -> bytes:
    """An Arrow table as bytes (to hand from one process to another)."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return sink.getvalue()


def from_ipc(raw: bytes) -> pa.Table:
    return pa.ipc.open_stream(raw).read_all()
