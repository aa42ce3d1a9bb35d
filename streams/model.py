"""What the stream worker stores and emits.

``StoredDossier`` is the value of the ``dossier-state`` table: the folded
domain state plus what the worker derived from it and must not recompute
differently after a restart (its current SLA and age buckets, its resolved
class, the alerts it already fired). Every aggregate the worker publishes is
a function of these records, which is what makes a rebuild after a crash or a
rebalance give the same numbers.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import msgspec

from onestop.fold import DossierState

ALERT_NAMESPACE = uuid.UUID("0b7c3f5e-8a1d-4a57-9f0e-2d6c8e4b1a90")


class StoredDossier(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    partition: int  # source partition of dossier.events (and of the changelog)
    state: DossierState
    field: str = ""  # lĩnh vực of the procedure, from the catalogue
    sla: str | None = None  # open dossiers: within_due / due_soon / overdue
    escalated: bool = False  # overdue for the escalation threshold of working days
    age: str | None = None  # open dossiers: age bucket since acceptance
    outcome: str | None = None  # resolved dossiers: before_due / on_due / overdue
    judged_due_at: datetime | None = None  # the due instant the SLA bucket was judged against
    alerts: tuple[str, ...] = ()  # ids of alerts already emitted (never emitted twice)
    active_alert: str | None = None  # the last due-soon/overdue/escalation alert not yet cleared
    # Added later; defaults keep older stored values readable.
    held: bool = False  # an alert is owed: decided while the partition caught up, sent once it is live
    gap_since: datetime | None = None  # partition clock when the dossier began to wait for a missing seq


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


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(StoredDossier)
_alert_json = msgspec.json.Encoder()
_alert_dec = msgspec.json.Decoder(Alert)


def encode_stored(stored: StoredDossier) -> bytes:
    return _enc.encode(stored)


def decode_stored(raw: bytes) -> StoredDossier:
    return _dec.decode(raw)


def encode_alert(alert: Alert) -> bytes:
    return _alert_json.encode(alert)


def decode_alert(raw: bytes) -> Alert:
    return _alert_dec.decode(raw)
