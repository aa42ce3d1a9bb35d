"""What the derived tables say, read the same way for the live pipeline and for a rebuild.

Each table is read through FINAL or its view and compared by logical content: the columns that
only say when or in which record a row arrived (ingestion times, ``dossier.state`` offsets, the
counters' versions) are left out, and so is the backlog's ``as_of``: the partition clock when the
worker's timer last published a count, which depends on when that timer fired.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sinks.clickhouse import insert, query
from sinks.columns import table_types
from sinks.rows import COLUMNS

# name → SELECT (``{db}``: the database); each is compared as a sorted list of rows.
DERIVED = {
    "dossier_events": "SELECT * EXCEPT (ingested_at) FROM {db}.dossier_events FINAL",
    "event_deliveries": "SELECT * FROM {db}.event_deliveries FINAL",
    "events_per_minute": "SELECT * FROM {db}.events_per_minute_counts",
    "events_per_day": "SELECT * FROM {db}.events_per_day_counts",
    "dossiers": "SELECT * EXCEPT (kafka_offset, updated_at, version) FROM {db}.dossiers FINAL",
    "backlog_now": "SELECT * EXCEPT (as_of) FROM {db}.backlog_now",
    "backlog_by_commune": "SELECT * EXCEPT (as_of) FROM {db}.backlog_by_commune",
    "throughput": "SELECT * FROM {db}.throughput",
    "ontime": "SELECT * FROM {db}.ontime",
    "same_day": "SELECT * FROM {db}.same_day",
    "service_activity": "SELECT * FROM {db}.service_activity",
    "satisfaction": "SELECT * FROM {db}.satisfaction",
    "counter_epochs": "SELECT DISTINCT source_partition FROM {db}.counter_epochs FINAL",
    "alerts": "SELECT * FROM {db}.alerts FINAL",
}
KEPT = {
    "dead_letters": "SELECT * FROM {db}.dead_letters FINAL",
    "communes": "SELECT * FROM {db}.communes FINAL",
}
# Tables a rebuild truncates and fills again (the materialized views' targets follow dossier_events).
WRITTEN = ("dossier_events", "event_deliveries", "dossiers", "backlog_partition", "throughput_partition",
           "ontime_partition", "sameday_partition", "service_activity_partition", "satisfaction_partition",
           "counter_epochs", "alerts")


def read(client: Any, db: str, selects: dict[str, str]) -> dict[str, list[tuple]]:
    out = {}
    for name, sql in selects.items():
        _, rows = query(client, sql.format(db=db))
        out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def stray_row(table: str) -> list:
    """A row no event produced, of the right types (a rebuild must not keep it)."""
    types = table_types(table)
    row = []
    for name in COLUMNS[table]:
        t = types[name].replace(" ", "")
        if t.startswith("Nullable("):
            row.append(None)
        elif name == "version" or name == "epoch":
            row.append(2**62)  # newer than any epoch: the views would show it
        elif "Int" in t:
            row.append(999 if name in ("source_partition", "kafka_partition") else 5)
        elif t == "Bool":
            row.append(False)
        elif t.startswith("DateTime64"):
            row.append(datetime(2026, 11, 10, 3, tzinfo=timezone.utc))
        elif t == "Date":
            row.append(date(2026, 11, 10))
        else:
            row.append("stray")
    return row


def write_strays(client: Any, db: str) -> None:
    for table in WRITTEN:
        insert(client, f"{db}.{table}", [stray_row(table)], COLUMNS[table], token=f"stray:{table}")


def first_difference(got: list[tuple], want: list[tuple]) -> str:
    only_got, only_want = sorted(set(got) - set(want), key=repr), sorted(set(want) - set(got), key=repr)
    return (f"{len(got)} rows against {len(want)}; only after: {only_got[:3]}; only before: {only_want[:3]}"
            + ("; same rows, different multiplicity" if not only_got and not only_want else ""))
