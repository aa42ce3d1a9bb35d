"""The dossier lifecycle as a pure fold: ``state = fold(events)``.

``apply(state, event)`` never raises on bad input and never mutates: it returns
a new state plus what happened to each event (applied, buffered, duplicate or
rejected with a reason). Events are applied strictly in per-dossier ``seq``
order; an event that arrives early waits in ``pending`` until the gap closes.
A rejected (illegal) event still consumes its sequence number, so one bad
event never blocks the dossier's later events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import msgspec

from onestop.events import DossierEvent, EventType

OPEN_STATUSES = frozenset({2, 4, 5, 6})  # accepted and not yet finished: the backlog
TERMINAL_STATUSES = frozenset({3, 7, 8, 10})
FINISHED_STATUSES = frozenset({3, 7, 8, 9, 10})

_E = EventType
_PROCESSING = {
    _E.STEP_ASSIGNED, _E.STEP_COMPLETED, _E.SUPPLEMENT_REQUESTED, _E.FINANCIAL_OBLIGATION_REQUESTED,
    _E.EXTENDED, _E.DUE_DATE_CORRECTED, _E.WITHDRAWAL_REQUESTED, _E.PROCESSING_STOPPED, _E.REFUSED,
    _E.RESULT_READY,
}
_PAUSED_EXITS = {_E.EXTENDED, _E.DUE_DATE_CORRECTED, _E.WITHDRAWAL_REQUESTED, _E.PROCESSING_STOPPED, _E.REFUSED}
# Which event types may follow a dossier's current status (None = no event yet).
ALLOWED: dict[int | None, frozenset[EventType]] = {
    None: frozenset({_E.SUBMITTED, _E.ACCEPTED, _E.REFUSED_AT_RECEPTION}),
    1: frozenset({_E.RECEPTION_SUPPLEMENT_REQUESTED, _E.ACCEPTED, _E.REFUSED_AT_RECEPTION, _E.WITHDRAWAL_REQUESTED}),
    2: frozenset(_PROCESSING),
    4: frozenset(_PROCESSING),
    5: frozenset({_E.SUPPLEMENT_RECEIVED, *_PAUSED_EXITS}),
    6: frozenset({_E.FINANCIAL_OBLIGATION_FULFILLED, *_PAUSED_EXITS}),
    9: frozenset({_E.RESULT_RETURNED, _E.DUE_DATE_CORRECTED}),
}


class Pause(msgspec.Struct, frozen=True):
    """A span during which the SLA clock may stop: a supplement or a financial-obligation wait."""

    kind: str  # "supplement" or "financial"
    start: datetime
    end: datetime | None = None


class DossierState(msgspec.Struct, frozen=True, kw_only=True):
    dossier_id: str
    commune_code: str
    handling_commune_code: str
    procedure_code: str
    channel: int
    status: int | None = None
    last_seq: int = 0
    submitted_at: datetime | None = None
    accepted_at: datetime | None = None
    original_due_at: datetime | None = None  # the receipt's date: legal statistics judge against it
    due_at: datetime | None = None  # effective date (latest extension or correction): operations chase it
    finished_at: datetime | None = None  # result ready, or the terminal event if that came first
    returned_at: datetime | None = None
    last_event_at: datetime | None = None
    pauses: tuple[Pause, ...] = ()
    processing_supplements: int = 0
    extensions: int = 0
    rejected: int = 0
    pending: tuple[DossierEvent, ...] = ()

    @property
    def is_open(self) -> bool:
        """In the backlog: accepted and not finished."""
        return self.status in OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class Rejection(msgspec.Struct, frozen=True):
    event: DossierEvent
    code: str
    message: str


class Outcome(msgspec.Struct, frozen=True):
    state: DossierState
    applied: tuple[DossierEvent, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    duplicate: bool = False
    buffered: bool = False


def new_state(event: DossierEvent) -> DossierState:
    return DossierState(
        dossier_id=event.dossier_id,
        commune_code=event.commune_code,
        handling_commune_code=event.handling_unit,
        procedure_code=event.procedure_code,
        channel=int(event.channel),
    )


def apply(state: DossierState | None, event: DossierEvent) -> Outcome:
    """Fold one event into a dossier's state. Pure; never raises on bad input."""
    if state is None:
        state = new_state(event)
    if event.dossier_id != state.dossier_id:
        rej = Rejection(event, "wrong_dossier", f"event for {event.dossier_id} folded into {state.dossier_id}")
        return Outcome(state, rejected=(rej,))
    if event.seq <= state.last_seq or any(p.seq == event.seq for p in state.pending):
        return Outcome(state, duplicate=True)
    if event.seq > state.last_seq + 1:
        pending = tuple(sorted((*state.pending, event), key=lambda e: e.seq))
        return Outcome(msgspec.structs.replace(state, pending=pending), buffered=True)
    applied: list[DossierEvent] = []
    rejected: list[Rejection] = []
    queue = [event, *state.pending]
    state = msgspec.structs.replace(state, pending=())
    while queue and queue[0].seq == state.last_seq + 1:
        nxt = queue.pop(0)
        state, rejection = _step(state, nxt)
        (rejected.append(rejection) if rejection else applied.append(nxt))
    return Outcome(msgspec.structs.replace(state, pending=tuple(queue)), tuple(applied), tuple(rejected))


def fold(events: Iterable[DossierEvent], state: DossierState | None = None) -> DossierState | None:
    for event in events:
        state = apply(state, event).state
    return state


def _step(state: DossierState, event: DossierEvent) -> tuple[DossierState, Rejection | None]:
    allowed = ALLOWED.get(state.status, frozenset())
    if event.event_type not in allowed:
        where = "a new dossier" if state.status is None else f"status {state.status}"
        rej = Rejection(event, "illegal_transition", f"{event.event_type.value} is not allowed after {where}")
        return msgspec.structs.replace(state, last_seq=event.seq, rejected=state.rejected + 1), rej
    return _transition(state, event), None


def _close_pause(pauses: tuple[Pause, ...], at: datetime) -> tuple[Pause, ...]:
    if pauses and pauses[-1].end is None:
        return (*pauses[:-1], msgspec.structs.replace(pauses[-1], end=at))
    return pauses


def _transition(state: DossierState, event: DossierEvent) -> DossierState:
    t, at = event.event_type, event.occurred_at
    changes: dict = {"last_seq": event.seq, "last_event_at": at}
    if event.status is not None:
        changes["status"] = event.status
    if t is _E.SUBMITTED:
        changes["submitted_at"] = at
    elif t is _E.ACCEPTED:
        changes.update(accepted_at=at, original_due_at=event.due_at, due_at=event.due_at)
        changes["submitted_at"] = state.submitted_at or at
    elif t is _E.SUPPLEMENT_REQUESTED:
        changes.update(pauses=(*state.pauses, Pause("supplement", at)),
                       processing_supplements=state.processing_supplements + 1)
    elif t is _E.FINANCIAL_OBLIGATION_REQUESTED:
        changes["pauses"] = (*state.pauses, Pause("financial", at))
    elif t in (_E.SUPPLEMENT_RECEIVED, _E.FINANCIAL_OBLIGATION_FULFILLED):
        changes["pauses"] = _close_pause(state.pauses, at)
    elif t is _E.EXTENDED:
        changes.update(due_at=event.due_at, extensions=state.extensions + 1)
    elif t is _E.DUE_DATE_CORRECTED:
        # An audited fix of the receipt itself: both dates move.
        changes.update(due_at=event.due_at, original_due_at=event.due_at)
    elif t is _E.RESULT_RETURNED:
        changes["returned_at"] = at
    if event.status in FINISHED_STATUSES and state.finished_at is None:
        changes["finished_at"] = at
        changes["pauses"] = _close_pause(changes.get("pauses", state.pauses), at)
    return msgspec.structs.replace(state, **changes)
