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
    # Added later; defaults keep older stored values readable.
    held: bool = False  # an alert is owed: decided while the partition caught up, sent once it is live
    gap_since: datetime | None = None  # partition clock when the dossier began to wait for a missing seq
    reception: Reception | None = None  # judged once at acceptance against the service calendar (practices)


# A stored dossier is one record of the table's changelog topic: stay well inside Kafka's default
# 1 MiB record limit, or the worker could not write it and would stop on every restart.
MAX_STORED_BYTES = 512 * 1024
STATE_UNENCODABLE = "state_unencodable"
STATE_TOO_LARGE = "state_too_large"

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(StoredDossier)


def encode_stored(stored: StoredDossier) -> bytes:
    return _enc.encode(stored)


def storage_problem(stored: StoredDossier, max_bytes: int = MAX_STORED_BYTES) -> tuple[str, str] | None:
    """(reason code, message) if ``stored`` could not be written to the state table, else None."""
    try:
        size = len(_enc.encode(stored))
    except (OverflowError, TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        return STATE_UNENCODABLE, f"the dossier's state could not be encoded: {type(exc).__name__}: {exc}"
    if size > max_bytes:
        return STATE_TOO_LARGE, (f"the dossier's state would take {size:,} bytes, more than the {max_bytes:,} "
                                 "a state record may take (many buffered events waiting for a missing seq?)")
    return None


def encoded_or_problem(stored: StoredDossier, max_bytes: int = MAX_STORED_BYTES) -> tuple[bytes | None, tuple[str, str] | None]:
    """(``stored`` encoded, None) if the state table can hold it, else (None, ``storage_problem``)."""
    try:
        raw = _enc.encode(stored)
    except (OverflowError, TypeError, ValueError):
        return None, storage_problem(stored, max_bytes)
    return (raw, None) if len(raw) <= max_bytes else (None, storage_problem(stored, max_bytes))


def decode_stored(raw: bytes) -> StoredDossier:
    return _dec.decode(raw)
