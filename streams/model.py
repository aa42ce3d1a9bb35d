"""What the stream worker stores and emits.

``StoredDossier`` is the value of the ``dossier-state`` table: the folded
domain state plus what the worker derived from it and must not recompute
differently after a restart (its current SLA and age buckets, its resolved
class, the alerts it already fired). Every aggregate the worker publishes is
a function of these records, which is what makes a rebuild after a crash or a
rebalance give the same numbers.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from onestop.fold import DossierState
from onestop.practices import Reception
# The alert is a wire format that the sinks read too; it lives with the other shared formats.
from onestop.wire import ALERT_NAMESPACE, Alert, alert_id, decode_alert, encode_alert  # noqa: F401


class StoredDossier(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """The value of the worker's state table for one dossier."""

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
    reception: Reception | None = None  # judged once at acceptance against the service calendar (practices)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(StoredDossier)


def encode_stored(stored: StoredDossier) -> bytes:
    return _enc.encode(stored)


def decode_stored(raw: bytes) -> StoredDossier:
    return _dec.decode(raw)
