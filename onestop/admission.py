"""What the pipeline admits: the one check every entrance and every reader applies to an event.

The contract (``onestop.events``) says what an event *is*; admission says whether it is
*believable* and *storable* here, now. ``admit(event, rules, received_at=...)`` is pure and
is called by every entrance (the gateway, the importer, the simulator's publisher) and
again by every reader of ``dossier.events`` (the worker, the ClickHouse sink), so records
produced before these rules, or by a producer that skipped them, meet the same rules.

The plausibility policy (docs/domain.md, "Admission"):

- the event must survive its own encoding: its bytes decode again under the contract's
  bounds (events built in code are not checked by the decoder);
- ``occurred_at`` at most ``future_margin`` after the receiver's clock ``received_at``
  (for a record read from Kafka: the record's timestamp, never later than the reader's
  wall clock, so a replay judges exactly as the live run did);
- ``occurred_at`` not before the floor: ``floor`` for live entrances, the earlier
  ``import_floor`` for events whose ``source`` is a historical import (``importer:…``);
- ``due_at`` of an ``accepted`` event not before its acceptance, by calendar date in
  Asia/Ho_Chi_Minh (the sources compare dates; a due date later in the same day is fine);
- the procedure code known to the catalogue in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from onestop import events
from onestop.catalogue import Catalogue
from onestop.events import DossierEvent, EventType
from onestop.settings import DEFAULT_FLOOR, DEFAULT_IMPORT_FLOOR, Settings
from onestop.workcal import VN_TZ

# Reason codes of admission (documented in docs/dlq.md), next to events.CONTRACT_ERROR_CODES.
OCCURRED_IN_FUTURE = "occurred_in_future"
OCCURRED_BEFORE_FLOOR = "occurred_before_floor"
DUE_BEFORE_ACCEPTANCE = "due_before_acceptance"
UNKNOWN_PROCEDURE = "unknown_procedure"
ADMISSION_CODES = (OCCURRED_IN_FUTURE, OCCURRED_BEFORE_FLOOR, DUE_BEFORE_ACCEPTANCE, UNKNOWN_PROCEDURE)

IMPORT_SOURCE_PREFIX = "importer:"
DEFAULT_FUTURE_MARGIN = timedelta(minutes=5)


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=VN_TZ)


@dataclass(frozen=True)
class AdmissionRules:
    """The plausibility policy in force. ``catalogue=None`` skips the procedure check."""

    catalogue: Catalogue | None
    future_margin: timedelta = DEFAULT_FUTURE_MARGIN
    floor: date = DEFAULT_FLOOR
    import_floor: date = DEFAULT_IMPORT_FLOOR

    def floor_of(self, event: DossierEvent) -> date:
        return self.import_floor if event.source.startswith(IMPORT_SOURCE_PREFIX) else self.floor


def rules_from(settings: Settings, catalogue: Catalogue | None) -> AdmissionRules:
    """The policy configured by ``ONESTOP_OCCURRED_AT_MAX_AHEAD_S`` and ``ONESTOP_OCCURRED_AT_FLOOR`` (see onestop.settings)."""
    return AdmissionRules(catalogue, future_margin=timedelta(seconds=settings.occurred_at_max_ahead_s),
                          floor=settings.occurred_at_floor, import_floor=settings.import_occurred_at_floor)


@dataclass(frozen=True)
class Refusal:
    """Why an event is not admitted: ``code`` for machines (docs/dlq.md), ``message`` for people."""

    code: str
    message: str
    field: str | None = None


def admit(event: DossierEvent, rules: AdmissionRules, *, received_at: datetime,
          decoded: bool = False) -> Refusal | None:
    """None if ``event`` may enter the pipeline, else the first rule it breaks.

    ``decoded``: the event comes from ``events.decode``, so its encoding is known to decode (readers of
    Kafka pass it and skip that round trip; entrances that build events in code do not)."""
    if not decoded:
        try:
            events.decode(events.encode(event))
        except events.ContractError as exc:
            return Refusal(exc.code, exc.message, exc.field)
        except UnicodeEncodeError as exc:  # a lone surrogate in a string built in code
            return Refusal("invalid_field", f"a text value cannot be written as UTF-8: {exc.reason}")
    latest = received_at + rules.future_margin
    if event.occurred_at > latest:
        return Refusal(OCCURRED_IN_FUTURE, f"occurred_at {event.occurred_at.isoformat()} is later than the "
                       f"receiver's clock {received_at.isoformat()} plus {rules.future_margin}", "occurred_at")
    floor = rules.floor_of(event)
    if event.occurred_at < local_midnight(floor):
        return Refusal(OCCURRED_BEFORE_FLOOR, f"occurred_at {event.occurred_at.isoformat()} is before "
                       f"{floor.isoformat()}, the earliest date this entrance admits", "occurred_at")
    if event.event_type is EventType.ACCEPTED and due_before(event.due_at, event.occurred_at):
        return Refusal(DUE_BEFORE_ACCEPTANCE, f"due_at {event.due_at.isoformat()} is before the acceptance "
                       f"itself ({event.occurred_at.isoformat()})", "due_at")
    if rules.catalogue is not None and event.procedure_code not in rules.catalogue:
        return Refusal(UNKNOWN_PROCEDURE, f"procedure {event.procedure_code!r} is not in the catalogue in force "
                       f"({rules.catalogue.version})", "procedure_code")
    return None


def receipt_time(record_timestamp: datetime | None, wall: datetime) -> datetime:
    """When a reader of Kafka takes a record to have been received: its timestamp, but never later than
    the reader's own clock (a producer may stamp any time). Without a timestamp: the reader's clock."""
    return min(record_timestamp, wall) if record_timestamp is not None else wall


def due_before(due_at: datetime | None, accepted_at: datetime | None) -> bool:
    """True if a due date falls on an earlier calendar day (Asia/Ho_Chi_Minh) than the acceptance."""
    if due_at is None or accepted_at is None:
        return False
    return due_at.astimezone(VN_TZ).date() < accepted_at.astimezone(VN_TZ).date()
