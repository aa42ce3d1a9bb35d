"""``onestop reconcile``: the stream's counts, recomputed from the raw events in the store, and every difference.

The worker keeps backlog, throughput, on-time and the service-practice counts
(same day, service activity, satisfaction) in memory and publishes them; the
sink keeps the latest version per source partition and the views add the
partitions up. Reconcile recomputes the same counts independently of that
path: it reads the raw events back from ClickHouse (``dossier_events`` FINAL,
in ``kafka_partition``, ``kafka_offset`` order, each event at the offset of its
first record: an event published twice keeps one row, with the later offset,
while ``event_deliveries`` keeps every record), folds them with the worker's
own processor (``ops.bulk_fold``) and compares the result with the views
``backlog_now``, ``throughput``, ``ontime``, ``same_day``, ``service_activity``
and ``satisfaction``.

A period selects the rows whose bucket, day or month *starts* in it (``2026-10``
is every row from local midnight 1 October to local midnight 1 November, in
Asia/Ho_Chi_Minh); the backlog is always compared as of now. The whole history
is folded whatever the period: a dossier counted in October may have started
in September, and the partition's event clock depends on every event before.

Events are rebuilt from their stored columns. A stored event keeps the
handling commune it resolved to; one that names none reads back as naming
none whenever that is the receiving commune (the contract's default), so a
later event that names the receiving commune itself after a hop elsewhere is
read as a hop-free event. The counts do not depend on the events' procedure
and calendar versions, which the table does not keep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterable, Iterator

from onestop import events
from onestop.events import Channel, DossierEvent, EventType, Rating, ReceptionPoint
from onestop.periods import parse_period as parse_report_period
from onestop.settings import Settings
from onestop.workcal import VN_TZ
from ops.bulk_fold import BulkFold
from sinks import practice_schema, schema
from sinks.rows import COLUMNS, EVENT_COLUMNS, counter_batch_rows

NOT_KEYS = {"n", "source_partition", "version", "as_of"}


@dataclass(frozen=True)
class Period:
    """``[since, until)``; None: open on that side."""

    since: datetime | None = None
    until: datetime | None = None
    name: str = "all time"

    def first_day(self) -> date | None:
        return None if self.since is None else _day_on_or_after(self.since)

    def end_day(self) -> date | None:
        return None if self.until is None else _day_on_or_after(self.until)


def _day_on_or_after(at: datetime) -> date:
    """The first local day whose midnight is at or after ``at``."""
    local = at.astimezone(VN_TZ)
    return local.date() if local.time() == time.min else local.date() + timedelta(days=1)


def parse_period(text: str) -> Period:
    """``2026-10-05`` (a day), or ``2026-10``, ``2026-Q4``, ``2026-H2``, ``2026`` (``onestop.periods``)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"period {text!r}: no such day") from None
        start = datetime.combine(day, time.min, tzinfo=VN_TZ)
        return Period(start, start + timedelta(days=1), text)
    p = parse_report_period(text)
    return Period(p.start, p.end, text)


@dataclass(frozen=True)
class View:
    """One stream view and the partition table whose counts it adds up."""

    name: str
    table: str
    value: str  # the view's count column
    time_column: str | None  # None: compared as of now (the backlog)

    @property
    def keys(self) -> list[str]:
        return [c for c in COLUMNS[self.table] if c not in NOT_KEYS]


VIEWS = (
    View(schema.BACKLOG_NOW, schema.BACKLOG_PARTS, "open_dossiers", None),
    View(schema.THROUGHPUT, schema.THROUGHPUT_PARTS, "dossiers", "bucket_start"),
    View(schema.ONTIME, schema.ONTIME_PARTS, "dossiers", "period_start"),
    View(practice_schema.SAMEDAY, practice_schema.SAMEDAY_PARTS, "dossiers", "day"),
    View(practice_schema.SERVICE, practice_schema.SERVICE_PARTS, "dossiers", "day"),
    View(practice_schema.SATISFACTION, practice_schema.SATISFACTION_PARTS, "", "month"),
)
SATISFACTION_MEASURES = ("finished", "overdue", "complaint_or_bad_rating", "rated")


@dataclass(frozen=True)
class Difference:
    view: str
    key: tuple[tuple[str, Any], ...]  # (column, value) pairs
    stream: int
    recomputed: int

    @property
    def key_text(self) -> str:
        return ", ".join(f"{name}={_shown(value)}" for name, value in self.key)


@dataclass
class Reconciliation:
    period: Period
    events: int  # raw events folded
    compared: dict[str, int]  # view → keys compared
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _normal(value: Any) -> Any:
    return value.astimezone(timezone.utc) if isinstance(value, datetime) else value


def _in_period(view: View, value: Any, period: Period) -> bool:
    if view.time_column is None:
        return True
    if isinstance(value, datetime):
        return (period.since is None or value >= period.since) and (period.until is None or value < period.until)
    first, end = period.first_day(), period.end_day()
    return (first is None or value >= first) and (end is None or value < end)


# --- the raw events, back from the store ------------------------------------------------------


# Each stored event at the place the worker met it first: ``dossier_events`` keeps one row per key
# (commune_code, occurred_at, event_id), and a copy published again later replaces it with its later
# offset; ``event_deliveries`` keeps one row per record.
_KEY = ("commune_code", "occurred_at", "event_id")
_FIRST = (f"SELECT {', '.join(_KEY)}, min(tuple(kafka_partition, kafka_offset)) AS first "
          f"FROM {{db}}.{practice_schema.DELIVERIES} GROUP BY {', '.join(_KEY)}")
_EVENT_FIELDS = ", ".join(f"e.{c}" for c in EVENT_COLUMNS if c not in ("kafka_partition", "kafka_offset"))
RAW_EVENTS_SQL = (
    f"SELECT {_EVENT_FIELDS}, if(d.event_id = '', e.kafka_partition, tupleElement(d.first, 1)) AS kafka_partition, "
    "if(d.event_id = '', e.kafka_offset, tupleElement(d.first, 2)) AS kafka_offset "
    f"FROM {{db}}.{schema.EVENTS} AS e FINAL LEFT JOIN ({_FIRST}) AS d ON "
    + " AND ".join(f"d.{c} = e.{c}" for c in _KEY) + " "
    "ORDER BY kafka_partition, kafka_offset, e.event_id")


def event_of_row(row: dict[str, Any]) -> DossierEvent:
    """The contract event a ``dossier_events`` row was made from (see the module docstring for its limits)."""
    handling = row["handling_commune_code"]
    rating = events.UNSET if row["rating_score"] is None else Rating(
        score=row["rating_score"], complaint=bool(row["rating_complaint"]), via=row["rating_via"] or "hand_back")
    point = row["reception_point"]
    return DossierEvent(
        event_id=row["event_id"], event_type=EventType(row["event_type"]), dossier_id=row["dossier_id"],
        seq=row["seq"], occurred_at=_utc(row["occurred_at"]), commune_code=row["commune_code"],
        procedure_code=row["procedure_code"], channel=Channel(row["channel"]), due_at=_utc(row["due_at"]),
        handling_commune_code=None if handling == row["commune_code"] else handling, step=row["step"],
        reason=row["reason"], source=row["source"], schema_version=row["schema_version"],
        reception_point=ReceptionPoint(point) if point else events.UNSET,
        beneficiary_group=row["beneficiary_group"] or events.UNSET, rating=rating)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def raw_event_rows(reader: Any, database: str) -> Iterator[dict[str, Any]]:
    with reader.stream(RAW_EVENTS_SQL.format(db=database)) as batches:
        for batch in batches:
            yield from batch.to_pylist()


def fold_raw_events(settings: Settings, rows: Iterable[dict[str, Any]]) -> tuple[BulkFold, int]:
    """The worker's fold over the stored raw events, counted; and the number of events folded."""
    fold, n = BulkFold(settings), 0
    for row in rows:
        event = event_of_row(row)
        fold.fold(row["kafka_partition"], row["kafka_offset"], events.encode(event), event)
        n += 1
    fold.count()
    return fold, n


# --- the two sides ----------------------------------------------------------------------------


Counts = dict[tuple, int]


def recomputed_counts(fold: BulkFold, period: Period) -> dict[str, Counts]:
    """View → (key values) → count, from the fold's counters, added up over the partitions."""
    by_table: dict[str, list[list]] = {}
    for batch in fold.counter_batches(version=1):
        for table, rows in counter_batch_rows(batch).items():
            by_table.setdefault(table, []).extend(rows)
    out: dict[str, Counts] = {}
    for view in VIEWS:
        columns = COLUMNS[view.table]
        keyed = [columns.index(c) for c in view.keys]
        at, n = (columns.index(view.time_column) if view.time_column else None), columns.index("n")
        counts: Counts = {}
        for row in by_table.get(view.table, ()):
            if at is not None and not _in_period(view, row[at], period):
                continue
            key = tuple(_normal(row[i]) for i in keyed)
            counts[key] = counts.get(key, 0) + row[n]
        out[view.name] = {k: v for k, v in counts.items() if v}
    return out


def stream_counts(reader: Any, database: str, period: Period) -> dict[str, Counts]:
    """View → (key values) → count, as the stream's views show them for the period."""
    from sinks.query_service import query_rows

    out: dict[str, Counts] = {}
    for view in VIEWS:
        where = _where(view, period)
        if view.name == practice_schema.SATISFACTION:
            head = [c for c in view.keys if c != "measure"]
            _, rows = query_rows(reader, f"SELECT {', '.join(head + list(SATISFACTION_MEASURES))} "
                                         f"FROM {database}.{view.name}{where}")
            counts = {(*map(_normal, r[:len(head)]), m): r[len(head) + i]
                      for r in rows for i, m in enumerate(SATISFACTION_MEASURES)}
        else:
            _, rows = query_rows(reader, f"SELECT {', '.join(view.keys)}, {view.value} "
                                         f"FROM {database}.{view.name}{where}")
            counts = {tuple(map(_normal, r[:-1])): r[-1] for r in rows}
        out[view.name] = {k: int(v) for k, v in counts.items() if v}
    return out


def _where(view: View, period: Period) -> str:
    if view.time_column is None or (period.since is None and period.until is None):
        return ""
    clauses = []
    if view.time_column == "bucket_start":
        for op, at in ((">=", period.since), ("<", period.until)):
            if at is not None:
                clauses.append(f"{view.time_column} {op} toDateTime64('{_utc_text(at)}', 3, 'UTC')")
    else:
        for op, day in ((">=", period.first_day()), ("<", period.end_day())):
            if day is not None:
                clauses.append(f"{view.time_column} {op} toDate('{day.isoformat()}')")
    return " WHERE " + " AND ".join(clauses)


def _utc_text(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def differences(stream: dict[str, Counts], recomputed: dict[str, Counts]) -> list[Difference]:
    out = []
    for view in VIEWS:
        got, want = stream.get(view.name, {}), recomputed.get(view.name, {})
        for key in sorted(set(got) | set(want), key=lambda k: tuple(map(_shown, k))):
            if got.get(key, 0) != want.get(key, 0):
                out.append(Difference(view.name, tuple(zip(view.keys, key)), got.get(key, 0), want.get(key, 0)))
    return out


def reconcile(settings: Settings, period: Period) -> Reconciliation:
    """Recompute the counts from the stored raw events and compare them with the stream's views."""
    from sinks.query_service import reader_for

    with reader_for(settings) as reader:
        fold, n = fold_raw_events(settings, raw_event_rows(reader, settings.clickhouse_database))
        stream = stream_counts(reader, settings.clickhouse_database, period)
    recomputed = recomputed_counts(fold, period)
    compared = {v.name: len(set(stream.get(v.name, {})) | set(recomputed.get(v.name, {}))) for v in VIEWS}
    return Reconciliation(period, n, compared, differences(stream, recomputed))
