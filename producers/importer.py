"""Import a one-stop system's export (CSV or JSONL, one row per dossier status record) as contract-v1 events.

Columns use the national portal's field names (MaHoSo, MaTTHC, TrangThaiHoSo,
KenhThucHien, NgayTiepNhan, NgayHenTra, ...); see docs/importer.md for the
whole mapping. Ids are deterministic, so importing the same file twice yields
the same events: ``event_id`` is a uuid5 of (MaHoSo, TrangThaiHoSo, the
record's UTC timestamp) and ``seq`` counts a dossier's accepted rows in file
order. A bad row is dead-lettered with its row number and reason and never
consumes a ``seq``; the rest of the file goes on. Every event must pass
admission (``onestop.admission``: the import floor, plausible dates, a known
procedure), like events from every other entrance.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from onestop import dlq
from onestop.admission import IMPORT_SOURCE_PREFIX, AdmissionRules, admit
from onestop.catalogue import default_catalogue
from onestop.communes import commune
from onestop.events import Channel, DossierEvent, EventType
from producers.import_readers import (COLUMNS, ImportFileError, Row, RowError, column_name, read_csv,
                                      read_jsonl)

__all__ = ["COLUMNS", "ImportFileError", "ImportSummary", "RowError", "RowMapper", "event_id_for",
           "event_type_for", "import_file", "iter_rows", "parse_time"]

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NAMESPACE = uuid.UUID("3c1d5a8e-7f42-4b0e-9a57-4e2f8b6d9c10")  # never change: it would change every event_id

# Without ThoiDiemXuLy, the status record's moment comes from the dossier-level date of that status.
FALLBACK_TIME = {1: "submitted_at", 2: "accepted_at", 9: "finished_at", 10: "returned_at"}
SIMPLE_TYPES = {
    1: EventType.SUBMITTED, 2: EventType.ACCEPTED, 3: EventType.REFUSED_AT_RECEPTION,
    6: EventType.FINANCIAL_OBLIGATION_REQUESTED, 7: EventType.WITHDRAWAL_REQUESTED,
    8: EventType.PROCESSING_STOPPED, 9: EventType.RESULT_READY, 10: EventType.RESULT_RETURNED,
}
STEP_TYPES = {EventType.STEP_ASSIGNED, EventType.STEP_COMPLETED}
_COMPACT = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M", 8: "%Y%m%d"}
_DMY = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


# ---- values -----------------------------------------------------------------------------------


def parse_time(text: str, column: str, *, end_of_day: bool = False) -> datetime:
    """A timestamp in UTC from ``yyyyMMddHHmmss`` (or ``yyyyMMddHHmm``, ``yyyyMMdd``), ``dd/MM/yyyy[ HH:mm[:ss]]``
    or ISO 8601. Naive values are Asia/Ho_Chi_Minh; a bare date is 00:00 (23:59:59 with ``end_of_day``)."""
    value = text.strip()
    try:
        if value.isdigit() and len(value) in _COMPACT:
            parsed, dated = datetime.strptime(value, _COMPACT[len(value)]), len(value) == 8
        elif match := _DMY.match(value):
            d, m, y, hh, mm, ss = match.groups()
            parsed = datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
            dated = hh is None
        else:
            parsed, dated = datetime.fromisoformat(value), len(value) == 10
    except ValueError:
        raise RowError("invalid_date", f"{column}: cannot read {text!r} as a date "
                       "(expected yyyyMMddHHmmss, dd/MM/yyyy HH:mm:ss or ISO 8601)") from None
    if dated and end_of_day:
        parsed = datetime.combine(parsed.date(), time(23, 59, 59))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VN)
    return parsed.astimezone(timezone.utc)


def commune_code(text: str, column: str, *, check: bool) -> str:
    """A 5-digit commune code; 1-4 digits are zero-padded (spreadsheets drop leading zeros)."""
    value = text.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 5):
        raise RowError("invalid_field", f"{column}: {text!r} is not a 5-digit commune code")
    value = value.zfill(5)
    if check and commune(value) is None:
        raise RowError("unknown_commune", f"{column}: {value} is not a commune code in the official list")
    return value


def _int(text: str, column: str, code: str, allowed: range) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or int(value) not in allowed:
        raise RowError(code, f"{column}: {text!r} is not one of {allowed.start}..{allowed.stop - 1}")
    return int(value)


def event_type_for(status: int, previous: int | None) -> EventType:
    """TrangThaiHoSo of a status record -> event type, given the dossier's status before it."""
    if status == 4:
        if previous == 5:
            return EventType.SUPPLEMENT_RECEIVED
        if previous == 6:
            return EventType.FINANCIAL_OBLIGATION_FULFILLED
        return EventType.STEP_ASSIGNED
    if status == 5:
        before_acceptance = previous is None or previous == 1
        return EventType.RECEPTION_SUPPLEMENT_REQUESTED if before_acceptance else EventType.SUPPLEMENT_REQUESTED
    return SIMPLE_TYPES[status]


def event_id_for(dossier_id: str, status: int, occurred_at: datetime) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{dossier_id}|{status}|{occurred_at.astimezone(timezone.utc).isoformat()}"))


# ---- rows -> events ---------------------------------------------------------------------------


@dataclass
class _Dossier:
    """What the file told so far about one dossier: its last status, seq, and carried-over fields."""

    seq: int = 0
    status: int | None = None
    procedure_code: str | None = None
    channel: Channel | None = None
    commune_code: str | None = None
    handling_commune_code: str | None = None
    event_ids: set[str] = field(default_factory=set)


class RowMapper:
    """Turns rows (canonical field -> text) into events, remembering each dossier across rows."""

    def __init__(self, source: str, *, check_communes: bool = True, rules: AdmissionRules | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.source = source
        self.check_communes = check_communes
        self.rules = rules or AdmissionRules(default_catalogue())
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.dossiers: dict[str, _Dossier] = {}

    def map(self, row: dict[str, str]) -> DossierEvent | None:
        """The row's event, or None if the file already had this very record; raises RowError."""
        dossier_id = _required(row, "dossier_id")
        status = _int(_required(row, "status"), column_name("status"), "unknown_status", range(1, 11))
        known = self.dossiers.get(dossier_id) or _Dossier()
        occurred_at = self._moment(row, status)
        event_id = event_id_for(dossier_id, status, occurred_at)
        if event_id in known.event_ids:
            return None
        fields = self._dossier_fields(row, known)
        event_type = event_type_for(status, known.status)
        due_at = None
        if event_type is EventType.ACCEPTED:
            due_at = parse_time(_required(row, "due_at"), column_name("due_at"), end_of_day=True)
        try:
            event = DossierEvent(
                event_id=event_id, event_type=event_type, dossier_id=dossier_id, seq=known.seq + 1,
                occurred_at=occurred_at, due_at=due_at, reason=_text(row, "reason"),
                step=_text(row, "step") if event_type in STEP_TYPES else None,
                source=self.source, **fields)
        except (ValueError, TypeError) as exc:
            raise RowError("invalid_event", str(exc)) from None
        refusal = admit(event, self.rules, received_at=self.clock())  # before the row may consume a seq
        if refusal is not None:
            raise RowError(refusal.code, refusal.message)
        self._remember(dossier_id, known, event, fields)
        return event

    def _moment(self, row: dict[str, str], status: int) -> datetime:
        if _text(row, "at"):
            return parse_time(row["at"], column_name("at"))
        fallback = FALLBACK_TIME.get(status)
        if fallback and _text(row, fallback):
            return parse_time(row[fallback], column_name(fallback))
        names = column_name("at") + (f" (or {column_name(fallback)})" if fallback else "")
        raise RowError("missing_field", f"{names} is empty: no moment for this status {status} record")

    def _dossier_fields(self, row: dict[str, str], known: _Dossier) -> dict[str, Any]:
        """procedure, channel and communes of the row, else carried over from the dossier's earlier rows."""
        procedure = _text(row, "procedure_code") or known.procedure_code
        channel_text = _text(row, "channel")
        channel = Channel(_int(channel_text, column_name("channel"), "invalid_field", range(1, 4))) \
            if channel_text else known.channel
        receiving = _text(row, "commune_code")
        receiving = commune_code(receiving, column_name("commune_code"), check=self.check_communes) \
            if receiving else known.commune_code
        handling = _text(row, "handling_commune_code")
        handling = commune_code(handling, column_name("handling_commune_code"), check=self.check_communes) \
            if handling else known.handling_commune_code
        for name, value in (("procedure_code", procedure), ("channel", channel), ("commune_code", receiving)):
            if value is None:
                raise RowError("missing_field", f"{column_name(name)} is empty and no earlier row of the "
                               "dossier gave it")
        return {"procedure_code": procedure, "channel": channel, "commune_code": receiving,
                "handling_commune_code": handling}

    def _remember(self, dossier_id: str, known: _Dossier, event: DossierEvent, fields: dict[str, Any]) -> None:
        known.seq = event.seq
        known.status = event.status if event.status is not None else known.status
        known.procedure_code, known.channel = fields["procedure_code"], fields["channel"]
        known.commune_code, known.handling_commune_code = fields["commune_code"], fields["handling_commune_code"]
        known.event_ids.add(event.event_id)
        self.dossiers[dossier_id] = known


def _text(row: dict[str, str], key: str) -> str | None:
    value = row.get(key)
    return value.strip() if value is not None and value.strip() else None


def _required(row: dict[str, str], key: str) -> str:
    value = _text(row, key)
    if value is None:
        raise RowError("missing_field", f"{column_name(key)} is empty")
    return value


# ---- the import -------------------------------------------------------------------------------


class EventSink(Protocol):
    """The part of producers.publisher.Publisher the importer uses."""

    def publish(self, event: DossierEvent) -> None: ...

    def dead_letter(self, record: dlq.DeadLetter) -> None: ...


@dataclass
class ImportSummary:
    file: str
    rows: int = 0  # data rows read (blank lines not counted)
    events: int = 0  # events published
    duplicates: int = 0  # rows repeating a record already imported from this file
    rejected: Counter = field(default_factory=Counter)  # reason code -> rows

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def detect_format(path: Path, fmt: str | None = None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if fmt in ("csv", "tsv", "txt"):
        return "csv"
    raise ImportFileError(f"cannot tell the format of {path.name}; pass --format csv or --format jsonl")


def iter_rows(path: Path, fmt: str | None = None) -> Iterator[Row]:
    reader = read_jsonl if detect_format(path, fmt) == "jsonl" else read_csv
    try:
        with open(path, "rb") as handle:
            yield from reader(handle)
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from exc


def import_file(path: Path, sink: EventSink, *, fmt: str | None = None, check_communes: bool = True,
                on_row: Callable[[Row], None] | None = None, rules: AdmissionRules | None = None,
                clock: Callable[[], datetime] | None = None) -> ImportSummary:
    """Publish the file's events and dead-letter its bad rows; return the counts.

    ``rules``: the admission policy (default: the packaged catalogue and the default floors; the
    ``importer:`` source gives the import floor)."""
    name = path.name
    mapper = RowMapper(f"{IMPORT_SOURCE_PREFIX}{name}", check_communes=check_communes, rules=rules, clock=clock)
    summary = ImportSummary(name)
    for row in iter_rows(path, fmt):
        summary.rows += 1
        try:
            if row.error is not None:
                raise row.error
            event = mapper.map(row.fields or {})
        except RowError as exc:
            summary.rejected[exc.code] += 1
            dossier_id = _text(row.fields or {}, "dossier_id")
            sink.dead_letter(dlq.dead_letter(row.raw, exc.code, f"row {row.number}: {exc.message}",
                                             f"importer:{name}:{row.number}", dossier_id=dossier_id))
        else:
            if event is None:
                summary.duplicates += 1
            else:
                sink.publish(event)
                summary.events += 1
        if on_row is not None:
            on_row(row)
    return summary
