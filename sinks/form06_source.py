"""Form 06 from the store: a province's raw events read back into the event contract, then the pure report.

The computation is the domain's own (``onestop.report.form06``); this module
only chooses the events. It reads, from ``dossier_events`` (with FINAL), every
event before the period's end of the dossiers whose handling commune (as of
their latest event) is one of the province's communes, leaving out dossiers
that were closed before the period began: every event of theirs lies before
the start and one of them finishes the dossier. (A finishing event that the
fold rejected, and the worker dead-lettered, is not told apart here.)

The raw table keeps the handling unit of every event (``handling_commune_code``
or, when absent, the receiving commune). Read back, an event whose handling
unit is its receiving commune carries no ``handling_commune_code``, as the
sources send it; only an explicit hop back to the receiving commune reads
differently, and the fold treats both alike unless an earlier event moved the
dossier elsewhere.
"""

from __future__ import annotations

from typing import Iterator

from onestop.catalogue import Catalogue
from onestop.communes import communes_of
from onestop.events import Channel, DossierEvent, EventType
from onestop.periods import ReportPeriod
from onestop.report import Form06Report, form06
from onestop.workcal import WorkCalendar
from sinks import schema
from sinks.readonly import Reader

GROUP_BY = ("handling_commune", "field")
FINISHING = tuple(t.value for t in (EventType.RESULT_READY, EventType.RESULT_RETURNED, EventType.REFUSED,
                                    EventType.PROCESSING_STOPPED, EventType.WITHDRAWAL_REQUESTED,
                                    EventType.REFUSED_AT_RECEPTION))
_COLUMNS = ("event_id", "event_type", "dossier_id", "seq", "occurred_at", "commune_code", "handling_commune_code",
            "procedure_code", "channel", "due_at", "step", "reason", "source", "schema_version")
EVENTS_SQL = """
SELECT {columns}
FROM {db}.{events} FINAL
WHERE occurred_at < {{end:DateTime64(3, 'UTC')}}
  AND dossier_id IN (
    SELECT dossier_id FROM {db}.{events} FINAL
    WHERE occurred_at < {{end:DateTime64(3, 'UTC')}}
    GROUP BY dossier_id
    HAVING has({{communes:Array(String)}}, argMax(handling_commune_code, seq))
       AND (max(occurred_at) >= {{start:DateTime64(3, 'UTC')}} OR countIf(event_type IN {finishing}) = 0))
"""


def province_events(reader: Reader, database: str, province: str, period: ReportPeriod) -> Iterator[DossierEvent]:
    """The events Form 06 needs for ``province`` over ``period``, streamed from the store."""
    communes = [c.code for c in communes_of(province)]
    sql = EVENTS_SQL.format(columns=", ".join(_COLUMNS), db=database, events=schema.EVENTS,
                            finishing="(" + ", ".join(f"'{t}'" for t in FINISHING) + ")")
    params = {"start": period.start, "end": period.end, "communes": communes}
    with reader.stream(sql, params) as batches:
        for batch in batches:
            for row in batch.to_pylist():
                yield _event(row)


def _event(row: dict) -> DossierEvent:
    handling = row["handling_commune_code"]
    return DossierEvent(
        event_id=row["event_id"], event_type=EventType(row["event_type"]), dossier_id=row["dossier_id"],
        seq=row["seq"], occurred_at=row["occurred_at"], commune_code=row["commune_code"],
        procedure_code=row["procedure_code"], channel=Channel(row["channel"]), due_at=row["due_at"],
        handling_commune_code=handling if handling and handling != row["commune_code"] else None,
        step=row["step"], reason=row["reason"], source=row["source"], schema_version=row["schema_version"])


def province_report(reader: Reader, database: str, province: str, period: ReportPeriod, *,
                    calendar: WorkCalendar, catalogue: Catalogue) -> Form06Report:
    """Form 06 of ``province`` over ``period``, rows by handling commune and field."""
    events = list(province_events(reader, database, province, period))
    return form06(events, period.start, period.end, calendar=calendar, catalogue=catalogue, group_by=GROUP_BY)
