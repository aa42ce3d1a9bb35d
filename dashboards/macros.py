"""Grafana's variables and the ClickHouse data source's macros, expanded as Grafana and the plugin expand them.

The embedded view and the tests run the panels' SQL without Grafana, so they
substitute what Grafana would. Two steps, in Grafana's order:

1. the dashboard's template variables (``${commune}``, ``$commune``), which
   Grafana's front end replaces before the query leaves the browser;
2. the macros of grafana-clickhouse-datasource v4 (``pkg/macros/macros.go``),
   which its back end expands from the query's time range and interval:

   ``$__timeFilter(c)``   → ``c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)``
   ``$__timeFilter_ms(c)``→ the same with ``fromUnixTimestamp64Milli(<ms>)``
   ``$__dateFilter(c)``   → ``c >= toDate('<from date>') AND c <= toDate('<to date>')`` (dates in UTC)
   ``$__fromTime`` / ``$__toTime``       → ``toDateTime(<unix s>)``
   ``$__fromTime_ms`` / ``$__toTime_ms`` → ``fromUnixTimestamp64Milli(<unix ms>)``
   ``$__timeInterval(c)`` → ``toStartOfInterval(toDateTime(c), INTERVAL <interval s> second)``
   ``$__interval_s``      → the interval in whole seconds, at least 1
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping


class MacroError(ValueError):
    """A macro with the wrong arguments, or a variable no one defined."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a time range needs time zones (Grafana's are UTC instants)")
        if self.end < self.start:
            raise ValueError("a time range ends after it starts")

    @classmethod
    def ending(cls, end: datetime, span: timedelta) -> "TimeRange":
        return cls(end - span, end)


def interval_for(time_range: TimeRange, max_data_points: int = 200, min_interval: timedelta | None = None) -> timedelta:
    """Grafana's $__interval: the range over the panel's data points, never below the panel's min interval,
    rounded to Grafana's steps."""
    raw = (time_range.end - time_range.start) / max(max_data_points, 1)
    steps = [timedelta(seconds=s) for s in (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800,
                                             21600, 43200, 86400, 604800)]
    rounded = next((s for s in steps if s >= raw), steps[-1])
    return max(rounded, min_interval) if min_interval else rounded


def _unix(at: datetime) -> int:
    return int(at.timestamp())


def _unix_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _one_argument(name: str, args: list[str]) -> str:
    if len(args) != 1 or not args[0]:
        raise MacroError(f"$__{name} expects 1 argument, received {len(args)}")
    return args[0]


def _date(at: datetime) -> str:
    return f"toDate('{at.astimezone(timezone.utc):%Y-%m-%d}')"


def _expand(name: str, args: list[str] | None, tr: TimeRange, interval: timedelta) -> str:
    seconds = max(int(interval.total_seconds()), 1)
    f, t = tr.start, tr.end
    simple = {
        "fromTime": f"toDateTime({_unix(f)})", "toTime": f"toDateTime({_unix(t)})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({_unix_ms(f)})", "toTime_ms": f"fromUnixTimestamp64Milli({_unix_ms(t)})",
        "interval_s": str(seconds),
    }
    if name in simple:
        return simple[name]
    if args is None:
        raise MacroError(f"$__{name} needs arguments")
    column = _one_argument(name, args) if name != "dateTimeFilter" else ""
    if name == "timeFilter":
        return f"{column} >= toDateTime({_unix(f)}) AND {column} <= toDateTime({_unix(t)})"
    if name == "timeFilter_ms":
        return f"{column} >= fromUnixTimestamp64Milli({_unix_ms(f)}) AND {column} <= fromUnixTimestamp64Milli({_unix_ms(t)})"
    if name == "dateFilter":
        return f"{column} >= {_date(f)} AND {column} <= {_date(t)}"
    if name == "timeInterval":
        return f"toStartOfInterval(toDateTime({column}), INTERVAL {seconds} second)"
    if name == "timeInterval_ms":
        ms = max(int(interval.total_seconds() * 1000), 1)
        return f"toStartOfInterval(toDateTime64({column}, 3), INTERVAL {ms} millisecond)"
    raise MacroError(f"unknown macro $__{name}")


_MACRO = re.compile(r"\$__(\w+?)(?:\(([^()]*)\))?(?=\W|$)")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(?!__)(\w+)")


def substitute_variables(sql: str, variables: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise MacroError(f"variable ${name} is not defined")
        return variables[name]

    return _VARIABLE.sub(one, sql)


def expand(sql: str, time_range: TimeRange, interval: timedelta, variables: Mapping[str, str] | None = None) -> str:
    """``sql`` as ClickHouse receives it from Grafana."""
    text = substitute_variables(sql, variables or {})

    def one(match: re.Match[str]) -> str:
        args = None if match.group(2) is None else [a.strip() for a in match.group(2).split(",")]
        return _expand(match.group(1), args, time_range, interval)

    return _MACRO.sub(one, text)


def used_variables(sql: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _VARIABLE.finditer(sql)}


def uses_time_filter(sql: str) -> bool:
    return bool(re.search(r"\$__(timeFilter|timeFilter_ms|dateFilter|dateTimeFilter|dt)\(", sql))

