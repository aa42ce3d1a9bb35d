"""The ClickHouse column types of ``sinks/schema.py``, and whether a Python value fits one.

The sink checks every row before it inserts it, so a value ClickHouse (or
clickhouse-connect's native encoder) would refuse is isolated as one bad
record instead of failing the whole insert. The types are read from the DDL
itself, so a changed column changes the check with it; an integration test
compares them with what chDB reports for the created tables.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Sequence

from sinks import history_schema, practice_schema, schema

Check = Callable[[Any], bool]

_INT_RANGES = {f"{sign}Int{bits}": ((0, 2**bits - 1) if sign else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
               for sign in ("U", "") for bits in (8, 16, 32, 64)}
# DateTime64 holds 1900-01-01 .. 2299-12-31, Date 1970-01-01 .. 2149-06-06.
_DT64 = (datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc))
_DATE = (date(1970, 1, 1), date(2149, 6, 6))
_COLUMN_END = re.compile(r"\s+(DEFAULT|MATERIALIZED|ALIAS|EPHEMERAL|CODEC|TTL|COMMENT)\b")


def _is_text(value: Any) -> bool:
    if isinstance(value, bytes):
        return True
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _int_check(low: int, high: int) -> Check:
    return lambda v: isinstance(v, int) and low <= v <= high


def _datetime64(value: Any) -> bool:
    if not isinstance(value, datetime):
        return False
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return _DT64[0] <= aware <= _DT64[1]


def _date(value: Any) -> bool:
    day = value.date() if isinstance(value, datetime) else value
    return isinstance(day, date) and _DATE[0] <= day <= _DATE[1]


@lru_cache(maxsize=None)
def check_for(column_type: str) -> Check:
    """A predicate telling whether a Python value can be inserted into a column of this type."""
    t = column_type.replace(" ", "")
    if t.startswith("Nullable(") and t.endswith(")"):
        inner = check_for(t[len("Nullable("):-1])
        return lambda v: v is None or inner(v)
    if t.startswith("LowCardinality(") and t.endswith(")"):
        return check_for(t[len("LowCardinality("):-1])
    if t == "String":
        return _is_text
    if t in _INT_RANGES:
        return _int_check(*_INT_RANGES[t])
    if t == "Bool":
        return lambda v: isinstance(v, bool)
    if t.startswith("DateTime64("):
        return _datetime64
    if t == "Date":
        return _date
    raise ValueError(f"no value check for ClickHouse type {column_type!r}; add one to sinks/columns.py")


def column_types(ddl: str) -> dict[str, str]:
    """Column name -> type, from one ``CREATE TABLE … (…)`` statement."""
    start = ddl.index("(", ddl.index("CREATE TABLE"))
    depth, pieces, current = 0, [], []
    for char in ddl[start + 1:]:
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        if char == "," and depth == 0:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    pieces.append("".join(current))
    types = {}
    for piece in pieces:
        name, column_type = piece.strip().split(None, 1)
        types[name] = _COLUMN_END.split(column_type, maxsplit=1)[0].strip()
    return types


_ADD_COLUMN = re.compile(r"ALTER TABLE \{db\}\.(\w+) ADD COLUMN IF NOT EXISTS (\w+) (.+)$")


@lru_cache(maxsize=None)
def table_types(table: str) -> dict[str, str]:
    """The table's columns as created, and as later statements add to them."""
    tables = {**schema.TABLES, **practice_schema.TABLES, **history_schema.TABLES}
    types = column_types(tables[table])
    for statement in practice_schema.ALTERS:
        match = _ADD_COLUMN.match(statement.strip())
        if match and match.group(1) == table:
            types[match.group(2)] = _COLUMN_END.split(match.group(3), maxsplit=1)[0].strip()
    return types


def row_problem(table: str, columns: Sequence[str], row: Sequence[Any]) -> str | None:
    """Why ``row`` cannot go into ``table`` (naming the column), or None if every value fits."""
    if len(row) != len(columns):
        return f"{table}: {len(row)} values for {len(columns)} columns"
    types = table_types(table)
    for name, value in zip(columns, row):
        if not check_for(types[name])(value):
            shown = repr(value)
            return f"{table}.{name} ({types[name]}) cannot hold {shown[:80]}{'…' if len(shown) > 80 else ''}"
    return None
