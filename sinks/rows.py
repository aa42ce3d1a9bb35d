"""Kafka records → ClickHouse rows, one function per topic.

Each function returns ``{table: [row, ...]}`` or raises ``BadRecord`` with a
reason code; the writer dead-letters such a record (``sinks.isolate``) and
moves on. Events are checked again as the worker checks them: the contract,
then admission (``onestop.admission``) against the record's Kafka timestamp.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import msgspec

from onestop import dlq, events
from onestop.admission import AdmissionRules, admit, receipt_time
from onestop.events import UNSET
from onestop.lateness import arrival
from onestop.wire import Alert, CounterBatch, DossierRecord, decode_alert, decode_dossier
from sinks import history_schema as history
from sinks import practice_schema as practices
from sinks import schema
from sinks.isolate import BadRecord

Rows = dict[str, list[list[Any]]]

EVENT_COLUMNS = [
    "event_id", "event_type", "dossier_id", "seq", "occurred_at", "commune_code", "handling_commune_code",
    "procedure_code", "channel", "due_at", "step", "reason", "source", "schema_version",
    "kafka_partition", "kafka_offset",
    # contract 1.1
    "reception_point", "beneficiary_group", "rating_score", "rating_complaint", "rating_via",
]
COLUMNS: dict[str, list[str]] = {
    schema.EVENTS: EVENT_COLUMNS,
    schema.BACKLOG_PARTS: ["commune_code", "field", "procedure_code", "channel", "sla", "waiting", "age_bucket",
                           "escalated", "n", "source_partition", "version", "as_of"],
    schema.THROUGHPUT_PARTS: ["granularity", "bucket_start", "commune_code", "field", "channel", "measure",
                              "n", "source_partition", "version"],
    schema.ONTIME_PARTS: ["granularity", "period_start", "commune_code", "procedure_code", "field", "outcome",
                          "n", "source_partition", "version"],
    schema.ALERTS: ["alert_id", "kind", "dossier_id", "commune_code", "receiving_commune_code", "procedure_code",
                    "field", "due_at", "original_due_at", "fired_at", "clock", "reason", "clears"],
    schema.EPOCHS: ["source_partition", "epoch"],
    schema.DEAD_LETTERS: ["kafka_partition", "kafka_offset", "reason_code", "message", "source", "rejected_at",
                          "dossier_id", "event_id", "original_b64"],
    practices.SAMEDAY_PARTS: ["day", "commune_code", "procedure_code", "reception_point", "no_appointment_day",
                              "listed", "measure", "n", "source_partition", "version"],
    practices.SERVICE_PARTS: ["day", "commune_code", "service", "reception_point", "procedure_code",
                              "beneficiary_group", "n", "source_partition", "version"],
    practices.SATISFACTION_PARTS: ["month", "commune_code", "measure", "n", "source_partition", "version"],
    history.DOSSIERS: [
        "dossier_id", "status", "commune_code", "handling_commune_code", "procedure_code", "field", "channel",
        "submitted_at", "accepted_at", "finished_at", "returned_at", "original_due_at", "due_at", "judged_due_at",
        "sla_class", "escalated", "outcome", "paused", "supplement_count", "extension_count", "calendar_version",
        "procedure_version", "last_seq", "last_event_at", "source_partition", "version", "kafka_offset"],
    practices.DELIVERIES: ["event_id", "dossier_id", "commune_code", "occurred_at", "arrived_at", "spooled",
                           "kafka_partition", "kafka_offset"],
}
_DAY_KEYED = {"sameday": practices.SAMEDAY_PARTS, "service": practices.SERVICE_PARTS,
              "satisfaction": practices.SATISFACTION_PARTS}
_batch = msgspec.json.Decoder(CounterBatch)
__all__ = ["COLUMNS", "BadRecord", "Rows", "alert_row", "alert_rows", "counter_batch_rows", "counter_rows",
           "dead_letter_rows", "delivery_row", "dossier_row", "dossier_rows", "event_row", "event_rows"]


def event_rows(raw: bytes, partition: int, offset: int, *, rules: AdmissionRules | None = None,
               received_at: datetime | None = None, headers: list | None = None) -> Rows:
    """The raw event, and (given the record's timestamp) its delivery for the late-data views.

    ``rules``: the admission policy to check the event against (None: the contract only)."""
    try:
        e = events.decode(raw)
    except events.ContractError as exc:
        raise BadRecord(exc.message, exc.code) from None
    if rules is not None:
        refusal = admit(e, rules, received_at=receipt_time(received_at, datetime.now(timezone.utc)), decoded=True)
        if refusal is not None:
            raise BadRecord(refusal.message, refusal.code)
    rows: Rows = {schema.EVENTS: [event_row(e, partition, offset)]}
    delivery = delivery_row(e, partition, offset, received_at, headers)
    if delivery is not None:
        rows[practices.DELIVERIES] = [delivery]
    return rows


def event_row(e: events.DossierEvent, partition: int, offset: int) -> list[Any]:
    """The ``dossier_events`` row of an admitted event (``EVENT_COLUMNS``)."""
    rating = e.rating if e.rating is not UNSET else None
    point = e.reception_point.value if e.reception_point else None
    return [
        e.event_id, e.event_type.value, e.dossier_id, e.seq, e.occurred_at, e.commune_code, e.handling_unit,
        e.procedure_code, int(e.channel), e.due_at, e.step, e.reason, e.source, e.schema_version, partition, offset,
        point, e.beneficiary_group or None, rating and rating.score, rating and rating.complaint, rating and rating.via,
    ]


def delivery_row(e: events.DossierEvent, partition: int, offset: int, received_at: datetime | None,
                 headers: list | None) -> list[Any] | None:
    """The ``event_deliveries`` row of an event, or None when its record has no timestamp."""
    arrived, spooled = arrival(None if received_at is None else round(received_at.timestamp() * 1000), headers)
    if arrived is None:
        return None
    return [e.event_id, e.dossier_id, e.commune_code, e.occurred_at, arrived, spooled, partition, offset]


def counter_rows(raw: bytes, partition: int, offset: int, *, received_at: datetime | None = None,
                 headers: list | None = None) -> Rows:
    try:
        batch = _batch.decode(raw)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRecord(f"{type(exc).__name__}: {exc}") from None
    try:
        return counter_batch_rows(batch)
    except (ValueError, TypeError, AttributeError) as exc:  # a row of the wrong shape or type
        raise BadRecord(f"a counter row cannot be read: {type(exc).__name__}: {exc}") from None


def counter_batch_rows(batch: CounterBatch) -> Rows:
    """The rows of one batch of counts: each family's partition table, and the batch's epoch."""
    out: Rows = {schema.EPOCHS: [[batch.source_partition, batch.epoch]]} if batch.epoch else {}
    tail = [batch.source_partition, batch.version]
    for family, *key, count in batch.rows:
        if family == "backlog":
            out.setdefault(schema.BACKLOG_PARTS, []).append([*key, count, *tail, batch.as_of])
        elif family == "throughput":
            gran, start, *rest = key
            out.setdefault(schema.THROUGHPUT_PARTS, []).append([gran, _dt(start), *rest, count, *tail])
        elif family == "ontime":
            gran, period, *rest = key
            out.setdefault(schema.ONTIME_PARTS, []).append([gran, date.fromisoformat(period), *rest, count, *tail])
        elif family in _DAY_KEYED:  # the service practices: (family, day or month, *key)
            day, *rest = key
            out.setdefault(_DAY_KEYED[family], []).append([date.fromisoformat(day), *rest, count, *tail])
    return out


def alert_rows(raw: bytes, partition: int, offset: int, *, received_at: datetime | None = None,
               headers: list | None = None) -> Rows:
    try:
        a = decode_alert(raw)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRecord(f"{type(exc).__name__}: {exc}") from None
    return {schema.ALERTS: [alert_row(a)]}


def alert_row(a: Alert) -> list[Any]:
    return [a.alert_id, a.kind, a.dossier_id, a.commune_code, a.receiving_commune_code, a.procedure_code, a.field,
            a.due_at, a.original_due_at, a.fired_at, a.clock, a.reason, a.clears]


def dossier_rows(raw: bytes, partition: int, offset: int, *, received_at: datetime | None = None,
                 headers: list | None = None) -> Rows:
    """A dossier's published state (``dossier.state``) as its row of ``dossiers``."""
    try:
        d = decode_dossier(raw)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRecord(f"{type(exc).__name__}: {exc}") from None
    return {history.DOSSIERS: [dossier_row(d, offset)]}


def dossier_row(d: DossierRecord, offset: int) -> list[Any]:
    """The ``dossiers`` row of a published state; ``offset``: its record's offset in ``dossier.state``."""
    return [
        d.dossier_id, d.status, d.commune_code, d.handling_commune_code, d.procedure_code, d.field, d.channel,
        d.submitted_at, d.accepted_at, d.finished_at, d.returned_at, d.original_due_at, d.due_at, d.judged_due_at,
        d.sla_class, d.escalated, d.outcome, d.paused, d.supplement_count, d.extension_count, d.calendar_version,
        d.procedure_version, d.last_seq, d.last_event_at, d.source_partition, d.version, offset]


def dead_letter_rows(raw: bytes, partition: int, offset: int, *, received_at: datetime | None = None,
                     headers: list | None = None) -> Rows:
    try:
        d = dlq.decode(raw)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRecord(f"{type(exc).__name__}: {exc}") from None
    return {schema.DEAD_LETTERS: [[partition, offset, d.reason_code, d.message, d.source, d.rejected_at,
                                   d.dossier_id, d.event_id, d.original_b64]]}


def _dt(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
