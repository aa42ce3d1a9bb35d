"""The dossier lifecycle as a pure fold: ``state = fold(events)``.

``apply(state, event)`` never raises on bad input and never mutates: it returns
a new state plus what happened to each event (applied, buffered, duplicate or
rejected with a reason). Events are applied strictly in per-dossier ``seq``
order; an event that arrives early waits in ``pending`` until the gap closes
(or until the caller gives up on the missing seqs: ``skip_gap``).
A rejected (illegal) event still consumes its sequence number, so one bad
event never blocks the dossier's later events.

Delivery is at-least-once, so ``event_id`` is the identity of an event: a
second copy changes nothing. A different event claiming a sequence number that
is already taken is a conflict; it is rejected and the state is left as it was.
Because everything is applied in ``seq`` order, any arrival order of the same
events folds to the same state.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Iterable, Literal, Mapping

import msgspec

from onestop.admission import DUE_BEFORE_ACCEPTANCE, due_before
from onestop.events import DossierEvent, EventType

OPEN_STATUSES = frozenset({2, 4, 5, 6})  # accepted and not yet finished: the backlog
TERMINAL_STATUSES = frozenset({3, 7, 8, 10})
FINISHED_STATUSES = frozenset({3, 7, 8, 9, 10})
STATUS_NAMES = {
    1: "Mới đăng ký", 2: "Được tiếp nhận", 3: "Không được tiếp nhận", 4: "Đang xử lý",
    5: "Yêu cầu bổ sung", 6: "Yêu cầu nghĩa vụ tài chính", 7: "Công dân rút hồ sơ",
    8: "Dừng xử lý", 9: "Đã xử lý xong", 10: "Đã trả kết quả",
}

_E = EventType
_PROCESSING = {
    _E.STEP_ASSIGNED, _E.STEP_COMPLETED, _E.SUPPLEMENT_REQUESTED, _E.FINANCIAL_OBLIGATION_REQUESTED,
    _E.EXTENDED, _E.DUE_DATE_CORRECTED, _E.WITHDRAWAL_REQUESTED, _E.PROCESSING_STOPPED, _E.REFUSED,
    _E.RESULT_READY,
}
_PAUSED_EXITS = {_E.EXTENDED, _E.DUE_DATE_CORRECTED, _E.WITHDRAWAL_REQUESTED, _E.PROCESSING_STOPPED, _E.REFUSED}
_NEW_DATE = {_E.EXTENDED, _E.DUE_DATE_CORRECTED}  # events that set a due date on an accepted dossier
_RECEPTION = {_E.RECEPTION_SUPPLEMENT_REQUESTED, _E.ACCEPTED, _E.REFUSED_AT_RECEPTION}
ResultWhileWaiting = Literal["accept", "reject"]


@lru_cache(maxsize=None)
def transitions(result_ready_while_waiting: ResultWhileWaiting = "accept") -> dict[int | None, frozenset[EventType]]:
    """Which event types may follow a dossier's current status (None = no event yet).

    | status | may be followed by |
    |---|---|
    | none yet | submitted, reception_supplement_requested, accepted, refused_at_reception |
    | 1 submitted | the same, and withdrawal_requested |
    | 2 accepted, 4 processing | every processing event: steps, supplement and financial requests, extended, due_date_corrected, withdrawal_requested, processing_stopped, refused, result_ready |
    | 5 supplement, 6 financial wait | the matching supplement_received / financial_obligation_fulfilled, extended, due_date_corrected, withdrawal_requested, processing_stopped, refused; and result_ready unless the policy ``result_ready_while_waiting`` is "reject" (the wait closes at the finish) |
    | 9 result ready | result_returned only: the class is fixed at the finish, so due_date_corrected is refused (as in 10) |
    | 3, 7, 8, 10 | nothing: the dossier is closed |

    A desk may ask for a supplement before anything else is recorded (in-person filing), and an
    online dossier is re-submitted after a reception-stage supplement request. A result made ready
    while the citizen still owes a supplement or a payment is a fact the source system recorded;
    by default it is accepted and the open wait ends at the finish (``SlaPolicy``).
    """
    waiting_exits = set(_PAUSED_EXITS)
    if result_ready_while_waiting == "accept":
        waiting_exits.add(_E.RESULT_READY)
    elif result_ready_while_waiting != "reject":
        raise ValueError(f"result_ready_while_waiting must be 'accept' or 'reject', got {result_ready_while_waiting!r}")
    return {
        None: frozenset({_E.SUBMITTED, *_RECEPTION}),
        1: frozenset({_E.SUBMITTED, *_RECEPTION, _E.WITHDRAWAL_REQUESTED}),
        2: frozenset(_PROCESSING),
        4: frozenset(_PROCESSING),
        5: frozenset({_E.SUPPLEMENT_RECEIVED, *waiting_exits}),
        6: frozenset({_E.FINANCIAL_OBLIGATION_FULFILLED, *waiting_exits}),
        9: frozenset({_E.RESULT_RETURNED}),
    }


ALLOWED = transitions()  # the default table: docs/domain.md lists it
Transitions = Mapping[int | None, frozenset[EventType]]
SKIPPED = ""  # event_ids entry of a seq that never arrived and was skipped (an event_id is never empty)
# A dossier has a handful of events, a few dozen at most. An event further ahead of the last applied seq
# than this is refused, not buffered: waiting for (and later skipping) billions of seqs would hold the
# dossier, and the worker's memory, hostage to one wrong number.
MAX_SEQ_AHEAD = 1000
SEQ_TOO_FAR_AHEAD = "seq_too_far_ahead"


class Pause(msgspec.Struct, frozen=True):
    """A span during which the SLA clock may stop: a supplement or a financial-obligation wait."""

    kind: str  # "supplement" or "financial"
    start: datetime
    end: datetime | None = None


class DossierState(msgspec.Struct, frozen=True, kw_only=True):
    dossier_id: str
    commune_code: str  # receiving unit: reception metrics
    handling_commune_code: str  # handling unit: timeliness metrics
    procedure_code: str
    channel: int
    status: int | None = None
    last_seq: int = 0
    submitted_at: datetime | None = None
    accepted_at: datetime | None = None
    original_due_at: datetime | None = None  # the receipt's date: legal statistics judge against it
    due_at: datetime | None = None  # effective date (latest extension, else original): operations chase it
    finished_at: datetime | None = None  # result ready, or the terminal event if that came first
    returned_at: datetime | None = None
    last_event_at: datetime | None = None
    pauses: tuple[Pause, ...] = ()
    processing_supplements: int = 0
    extensions: int = 0
    rejected: int = 0
    pending: tuple[DossierEvent, ...] = ()
    # Added after v1 of the fold; all default so older serialised states still load.
    event_ids: tuple[str, ...] = ()  # event_ids[seq - 1] consumed that seq: the dedup memory
    closed_by: str | None = None  # event type that finished the dossier (result_ready, refused, ...)
    extended_at: datetime | None = None  # when the latest extension letter was issued
    extended_due_at: datetime | None = None  # the latest extension's new date
    procedure_version: str | None = None  # as stamped on the accepted event
    calendar_version: str | None = None
    # Since contract 1.1 (None: the source did not say).
    reception_point: str | None = None  # counter, outreach, online, postal (from seq 1 or the receipt)
    beneficiary_group: str | None = None
    rating_score: int | None = None  # the latest rating's score
    rating_complaint: bool = False  # any rating of this dossier came with a complaint
    ratings: int = 0
    rated_at: datetime | None = None  # the latest rating
    rated_via: str | None = None

    @property
    def is_open(self) -> bool:
        """In the backlog: accepted and not finished."""
        return self.status in OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class Rejection(msgspec.Struct, frozen=True):
    event: DossierEvent
    code: str  # wrong_dossier | seq_conflict | illegal_transition | due_before_acceptance | seq_gap_timeout
    # | seq_too_far_ahead
    message: str


class Outcome(msgspec.Struct, frozen=True):
    state: DossierState
    applied: tuple[DossierEvent, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    duplicate: bool = False
    buffered: bool = False
    skipped: tuple[int, ...] = ()  # seqs given up on by ``skip_gap``


def new_state(event: DossierEvent) -> DossierState:
    return DossierState(
        dossier_id=event.dossier_id,
        commune_code=event.commune_code,
        handling_commune_code=event.handling_unit,
        procedure_code=event.procedure_code,
        channel=int(event.channel),
    )


def apply(state: DossierState | None, event: DossierEvent, allowed: Transitions = ALLOWED) -> Outcome:
    """Fold one event into a dossier's state. Pure; never raises on bad input."""
    if state is None:
        state = new_state(event)
    early = _screen(state, event)
    if early is not None:
        return early
    if event.seq > state.last_seq + 1:
        pending = tuple(sorted((*state.pending, event), key=lambda e: e.seq))
        return Outcome(msgspec.structs.replace(state, pending=pending), buffered=True)
    return _drain(state, [event, *state.pending], allowed)


def skip_gap(state: DossierState, allowed: Transitions = ALLOWED) -> Outcome:
    """Give up on the seqs missing before the first waiting event, and apply what waited.

    The caller decides when a gap has waited long enough (the worker: ``seq_gap_timeout_s`` on the
    partition's clock). The skipped seqs are remembered, so an event that claims one later is
    rejected (``seq_gap_timeout``) instead of being applied out of order.
    """
    if not state.pending:
        return Outcome(state)
    first = state.pending[0].seq
    skipped = tuple(range(state.last_seq + 1, first))
    ids = state.event_ids
    if len(ids) == state.last_seq:  # a state from before event_ids existed cannot name its seqs
        ids = (*ids, *(SKIPPED for _ in skipped))
    state = msgspec.structs.replace(state, last_seq=first - 1, event_ids=ids)
    outcome = _drain(state, list(state.pending), allowed)
    return msgspec.structs.replace(outcome, skipped=skipped)


def _drain(state: DossierState, queue: list[DossierEvent], allowed: Transitions) -> Outcome:
    """Apply the queue's events that follow ``state.last_seq`` in turn; the rest keep waiting."""
    applied: list[DossierEvent] = []
    rejected: list[Rejection] = []
    state = msgspec.structs.replace(state, pending=())
    while queue and queue[0].seq == state.last_seq + 1:
        nxt = queue.pop(0)
        state, rejection = _step(state, nxt, allowed)
        (rejected.append(rejection) if rejection else applied.append(nxt))
    return Outcome(msgspec.structs.replace(state, pending=tuple(queue)), tuple(applied), tuple(rejected))


def fold(events: Iterable[DossierEvent], state: DossierState | None = None,
         allowed: Transitions = ALLOWED) -> DossierState | None:
    for event in events:
        state = apply(state, event, allowed).state
    return state


def _screen(state: DossierState, event: DossierEvent) -> Outcome | None:
    """Settle the events that must not touch the state: other dossiers, copies, seq conflicts."""
    if event.dossier_id != state.dossier_id:
        rej = Rejection(event, "wrong_dossier", f"event for {event.dossier_id} folded into {state.dossier_id}")
        return Outcome(state, rejected=(rej,))
    if event.event_id in state.event_ids or any(p.event_id == event.event_id for p in state.pending):
        return Outcome(state, duplicate=True)
    if event.seq > state.last_seq + MAX_SEQ_AHEAD:
        rej = Rejection(event, SEQ_TOO_FAR_AHEAD,
                        f"seq {event.seq} of dossier {event.dossier_id} is more than {MAX_SEQ_AHEAD} ahead of its last "
                        f"applied seq {state.last_seq}; event {event.event_id} ({event.event_type.value}) was not applied")
        return Outcome(state, rejected=(rej,))
    if event.seq <= state.last_seq:
        if len(state.event_ids) < event.seq:
            # A state serialised before event_ids existed cannot tell; keep the old behaviour.
            return Outcome(state, duplicate=True)
        holder = state.event_ids[event.seq - 1]
        if holder == SKIPPED:
            rej = Rejection(event, "seq_gap_timeout",
                            f"seq {event.seq} of dossier {event.dossier_id} arrived after the dossier stopped "
                            f"waiting for it; event {event.event_id} ({event.event_type.value}) was not applied")
            return Outcome(state, rejected=(rej,))
        return Outcome(state, rejected=(_conflict(event, holder),))
    holder = next((p.event_id for p in state.pending if p.seq == event.seq), None)
    if holder is not None:
        return Outcome(state, rejected=(_conflict(event, holder),))
    return None


def _conflict(event: DossierEvent, holder: str) -> Rejection:
    return Rejection(event, "seq_conflict",
                     f"seq {event.seq} of dossier {event.dossier_id} is already taken by event {holder}; "
                     f"event {event.event_id} ({event.event_type.value}) was not applied")


def _step(state: DossierState, event: DossierEvent, allowed: Transitions) -> tuple[DossierState, Rejection | None]:
    if event.event_type is _E.RATED and state.status is not None:
        return _rated(state, event), None  # feedback, not a lifecycle step: taken at any status
    rej = None
    if event.event_type not in allowed.get(state.status, frozenset()):
        rej = Rejection(event, "illegal_transition", _illegal_message(state, event, allowed))
    elif event.event_type in _NEW_DATE and due_before(event.due_at, state.accepted_at):
        rej = Rejection(event, DUE_BEFORE_ACCEPTANCE, f"{event.event_type.value} (seq {event.seq}) sets due_at "
                        f"{event.due_at.isoformat()}, before the dossier's acceptance {state.accepted_at.isoformat()}")
    if rej is not None:
        # Even a rejected first event says who the dossier is; a state first built from a
        # buffered later event must not keep that event's identity.
        identity = _identity(state, event) if event.seq == 1 else {}
        consumed = msgspec.structs.replace(state, last_seq=event.seq, rejected=state.rejected + 1,
                                           event_ids=(*state.event_ids, event.event_id), **identity)
        return consumed, rej
    return _transition(state, event), None


def _illegal_message(state: DossierState, event: DossierEvent, allowed: Transitions) -> str:
    what = f"{event.event_type.value} (seq {event.seq})"
    if state.status is None:
        return f"{what} cannot open a dossier; expected one of submitted, accepted, refused_at_reception"
    where = f"status {state.status} ({STATUS_NAMES[state.status]})"
    if event.event_type is _E.DUE_DATE_CORRECTED and state.finished_at is not None:
        return f"{what} arrived after the finish ({where}): the class is fixed at the finish, so it is not applied"
    if state.status in TERMINAL_STATUSES:
        return f"{what} arrived after {where}: the dossier is closed"
    expected = ", ".join(sorted(t.value for t in allowed.get(state.status, ())))
    return f"{what} is not allowed after {where}; expected one of {expected}"


def _close_pause(pauses: tuple[Pause, ...], at: datetime) -> tuple[Pause, ...]:
    if pauses and pauses[-1].end is None:
        return (*pauses[:-1], msgspec.structs.replace(pauses[-1], end=at))
    return pauses


def _identity(state: DossierState, event: DossierEvent) -> dict:
    """Who and what the dossier is. Taken in seq order, so arrival order cannot change it."""
    if event.seq == 1 or event.event_type is _E.ACCEPTED:
        # The first event and the receipt are authoritative for the receiving unit and procedure.
        identity = dict(commune_code=event.commune_code, procedure_code=event.procedure_code,
                        channel=int(event.channel), handling_commune_code=event.handling_unit)
        if event.reception_point:  # absent (UNSET) or None on v1 events: keep what is known
            identity["reception_point"] = event.reception_point.value
        if event.beneficiary_group:
            identity["beneficiary_group"] = event.beneficiary_group
        return identity
    if event.handling_commune_code is not None:  # a hop to another handling unit
        return dict(handling_commune_code=event.handling_commune_code)
    return {}


def _rated(state: DossierState, event: DossierEvent) -> DossierState:
    """A rating changes what the citizen said, never the status, the finish or the dossier's class."""
    rating = event.rating
    return msgspec.structs.replace(
        state, last_seq=event.seq, last_event_at=event.occurred_at, event_ids=(*state.event_ids, event.event_id),
        rating_score=rating.score, rating_complaint=state.rating_complaint or rating.complaint,
        ratings=state.ratings + 1, rated_at=event.occurred_at, rated_via=rating.via)


def _transition(state: DossierState, event: DossierEvent) -> DossierState:
    t, at = event.event_type, event.occurred_at
    changes: dict = {"last_seq": event.seq, "last_event_at": at,
                     "event_ids": (*state.event_ids, event.event_id), **_identity(state, event)}
    if event.status is not None:
        changes["status"] = event.status
    if t is _E.SUBMITTED:
        changes["submitted_at"] = state.submitted_at or at
    elif t is _E.ACCEPTED:
        changes.update(accepted_at=at, original_due_at=event.due_at, due_at=event.due_at,
                       submitted_at=state.submitted_at or at, procedure_version=event.procedure_version,
                       calendar_version=event.calendar_version)
    elif t is _E.SUPPLEMENT_REQUESTED:
        changes.update(pauses=(*state.pauses, Pause("supplement", at)),
                       processing_supplements=state.processing_supplements + 1)
    elif t is _E.FINANCIAL_OBLIGATION_REQUESTED:
        changes["pauses"] = (*state.pauses, Pause("financial", at))
    elif t in (_E.SUPPLEMENT_RECEIVED, _E.FINANCIAL_OBLIGATION_FULFILLED):
        changes["pauses"] = _close_pause(state.pauses, at)
    elif t is _E.EXTENDED:
        changes.update(due_at=event.due_at, extended_due_at=event.due_at, extended_at=at,
                       extensions=state.extensions + 1)
    elif t is _E.DUE_DATE_CORRECTED:
        # An audited fix of the receipt itself. The effective date follows it only while no
        # extension is in force: effective = latest extension, else the original.
        changes.update(original_due_at=event.due_at, due_at=state.extended_due_at or event.due_at)
    elif t is _E.RESULT_RETURNED:
        changes["returned_at"] = at
    if event.status in FINISHED_STATUSES and state.finished_at is None:
        changes.update(finished_at=at, closed_by=t.value,
                       pauses=_close_pause(changes.get("pauses", state.pauses), at))
    return msgspec.structs.replace(state, **changes)
