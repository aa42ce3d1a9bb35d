"""Where the embedded view gets its numbers: one small interface, a function that runs SQL.

``Query`` takes a SQL statement and returns its column names and rows. The
process that owns the store passes ``store_query(client)``; a process that
reads through the store owner's loopback query service passes a function that
posts the SQL there. Nothing else in the embedded view touches ClickHouse.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from dashboards.macros import TimeRange, expand, interval_for
from dashboards.model import Panel
from sinks import schema

Query = Callable[[str], tuple[list[str], list[tuple]]]
DEFAULT_SPAN = timedelta(days=7)


def store_query(client: Any) -> Query:
    """Queries on a clickhouse-connect client (chDB or a server), one at a time (chDB is not re-entrant)."""
    from sinks.clickhouse import query

    lock = threading.Lock()

    def run(sql: str) -> tuple[list[str], list[tuple]]:
        with lock:
            return query(client, sql)

    return run


@dataclass(frozen=True)
class Result:
    panel: Panel
    sql: str  # as ClickHouse received it
    columns: list[str]
    rows: list[tuple]
    error: str | None = None


def run_panel(panel: Panel, query: Query, time_range: TimeRange, variables: dict[str, str]) -> Result:
    interval = interval_for(time_range, min_interval=_parse_interval(panel.min_interval))
    sql = expand(panel.sql, time_range, interval, variables)
    try:
        columns, rows = query(sql)
    except Exception as exc:  # a panel that fails shows its error; the others still draw
        return Result(panel, sql, [], [], error=str(exc).splitlines()[0][:300])
    return Result(panel, sql, columns, rows)


def _parse_interval(text: str | None) -> timedelta | None:
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def store_clock(query: Query, database: str) -> datetime | None:
    """The store's "now": the clock of the worker's latest counters (the event clock on a replay or a
    simulation, the wall clock live), else the latest stored event."""
    _, rows = query(f"SELECT max(as_of) FROM {database}.{schema.BACKLOG_PARTS}")
    at = rows[0][0] if rows else None
    if at is None:
        _, rows = query(f"SELECT max(occurred_at) FROM {database}.{schema.EVENTS}")
        at = rows[0][0] if rows else None
    if at is None or at.year < 2000:
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def communes_with_data(query: Query, database: str) -> list[tuple[str, str]]:
    """(code, name) of the communes the store has dossiers of, by name."""
    _, rows = query(f"SELECT b.commune_code, ifNull(nullIf(c.name, ''), b.commune_code) AS name "
                    f"FROM (SELECT DISTINCT commune_code FROM {database}.{schema.BACKLOG_PARTS}) AS b "
                    f"LEFT JOIN (SELECT code, any(name) AS name FROM {database}.{schema.COMMUNES} GROUP BY code) AS c "
                    f"ON c.code = b.commune_code ORDER BY name")
    return [(str(code), str(name)) for code, name in rows]

