"""The formats that leave the worker and that sinks, routers and replays read.

``dossier.events`` carries the event contract (:mod:`onestop.events`) and
``dossier.dlq`` the dead letters (:mod:`onestop.dlq`). This module holds the
others: the SLA alert on ``dossier.alerts`` and the counter batch on
``ioc.metrics``. They are plain msgspec Structs, with no I/O, so producers,
streams and sinks share them without importing one another.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import msgspec

ALERT_NAMESPACE = uuid.UUID("0b7c3f5e-8a1d-4a57-9f0e-2d6c8e4b1a90")


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One SLA alert. ``alert_id`` is stable: the same dossier, kind and deadline give the same id."""

    alert_id: str
    kind: str  # due_soon, overdue, escalation, cleared
    dossier_id: str
    commune_code: str  # handling unit: who must act
    receiving_commune_code: str
    procedure_code: str
    field: str
    due_at: datetime | None  # the judged due instant
    original_due_at: datetime | None
    fired_at: datetime  # clock time (wall or event) at which the alert was decided
    clock: str  # wall or event
    reason: str = ""
    clears: str | None = None  # for kind == cleared: the alert id it clears


def alert_id(dossier_id: str, kind: str, due_at: datetime | None) -> str:
    # The instant, not how it is written: a fresh verdict carries Asia/Ho_Chi_Minh times, a stored
    # dossier comes back from msgpack in UTC, and both must name the same alert.
    basis = f"{dossier_id}|{kind}|{due_at.astimezone(timezone.utc).isoformat() if due_at else '-'}"
    return str(uuid.uuid5(ALERT_NAMESPACE, basis))


_alert_json = msgspec.json.Encoder()
_alert_dec = msgspec.json.Decoder(Alert)


def encode_alert(alert: Alert) -> bytes:
    return _alert_json.encode(alert)


def decode_alert(raw: bytes) -> Alert:
    return _alert_dec.decode(raw)


class CounterBatch(msgspec.Struct, frozen=True, kw_only=True):
    """One message on ioc.metrics: changed counters of one source partition."""

    kind: str = "counters"
    source_partition: int
    version: int  # monotonic per publisher; the sink keeps the highest per key
    epoch: int = 0  # version of the partition's last rebuild: its rows with a lower version are void
    as_of: datetime | None  # the partition's clock when published
    rows: list[tuple]  # (family, *key, count)


class DossierRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One message on the compacted ``dossier.state`` topic: the current state of one dossier.

    ``version`` grows with every change the record can show (``dossier_version``), so a store
    that keeps the highest version per dossier holds the latest state however often, and in
    whatever order, records are delivered again."""

    dossier_id: str
    version: int
    status: int | None
    commune_code: str  # receiving unit
    handling_commune_code: str
    procedure_code: str
    field: str
    channel: int
    submitted_at: datetime | None
    accepted_at: datetime | None
    finished_at: datetime | None
    returned_at: datetime | None
    original_due_at: datetime | None
    due_at: datetime | None  # effective: the latest extension, else the original
    judged_due_at: datetime | None  # as it stands: moved by every pause that ended (open), or the outcome's (finished)
    sla_class: str | None  # open dossiers: within_due, due_soon, overdue
    escalated: bool
    outcome: str | None  # finished dossiers: before_due, on_due, overdue
    paused: bool  # the SLA clock stands still (waiting for a supplement, or a financial obligation that pauses)
    supplement_count: int
    extension_count: int
    calendar_version: str | None
    procedure_version: str | None
    last_seq: int
    last_event_at: datetime | None
    source_partition: int


SLA_STAGES = {None: 0, "within_due": 1, "due_soon": 2, "overdue": 3}
VERSION_STEPS = 8  # stages of one seq: none, within_due, due_soon, overdue, escalated, finished


def dossier_version(last_seq: int, sla_class: str | None, escalated: bool, finished: bool) -> int:
    """Grows with the seq, and within one seq with the SLA stage (which only moves forward in time)."""
    stage = 5 if finished else 4 if escalated else SLA_STAGES.get(sla_class, 0)
    return last_seq * VERSION_STEPS + stage


_record_json = msgspec.json.Encoder()
_record_dec = msgspec.json.Decoder(DossierRecord)


def encode_dossier(record: DossierRecord) -> bytes:
    return _record_json.encode(record)


def decode_dossier(raw: bytes) -> DossierRecord:
    return _record_dec.decode(raw)
