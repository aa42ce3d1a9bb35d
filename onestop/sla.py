"""The legal SLA clock: due dates, receipt checks, pauses and timeliness classes.

The receipt's due date (NgayHenTra) is the source system's legal commitment
and is authoritative. ``legal_due`` recomputes the date from the procedure's
legal time only to validate the receipt (``check_receipt``). ``classify``
judges a folded dossier: resolved ones as before / on / over due, open ones
at an instant as within due / due soon / overdue.

Rules that the sources leave open are fields of ``SlaPolicy``; the defaults
follow docs/domain.md. Every result carries the calendar version that
decided it.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from onestop.catalogue import Catalogue, Procedure, TimeUnit
from onestop.fold import DossierState, Pause, ResultWhileWaiting, Transitions, transitions
from onestop.workcal import WorkCalendar


class SlaPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The configurable parts of the clock. Defaults are the documented ones (docs/domain.md)."""

    # "date": compare calendar dates in Asia/Ho_Chi_Minh, as the legal sources do (a receipt
    # for 6 May is kept by a result at any time on 6 May). "instant": compare timestamps.
    boundary: Literal["date", "instant"] = "date"
    # Legal statistics judge resolved dossiers against the receipt; operations chase the extension.
    judge_resolved_against: Literal["original", "effective"] = "original"
    judge_open_against: Literal["original", "effective"] = "effective"
    # Due soon (sắp trễ): default 8 working hours = 1 working day. Đà Nẵng: 24 clock hours.
    due_soon_within: float = 8.0
    due_soon_unit: Literal["working_hours", "clock_hours"] = "working_hours"
    # The national calculator counts a second processing-stage supplement request as overdue.
    second_supplement_is_overdue: bool = True
    # result_ready while a supplement or payment wait is open: "accept" it (the wait closes at the
    # finish) or "reject" it as an illegal transition (fold.transitions lists both tables).
    result_ready_while_waiting: ResultWhileWaiting = "accept"

    @property
    def transitions(self) -> Transitions:
        """The fold's table of legal transitions under this policy."""
        return transitions(self.result_ready_while_waiting)


DEFAULT_POLICY = SlaPolicy()


class Timeliness(str, enum.Enum):
    BEFORE_DUE = "before_due"  # trước hạn (resolved)
    ON_DUE = "on_due"  # đúng hạn (resolved)
    OVERDUE = "overdue"  # quá hạn (resolved or open)
    WITHIN_DUE = "within_due"  # trong hạn (open)
    DUE_SOON = "due_soon"  # sắp trễ: open, within due, and close to the due date

    @property
    def on_time(self) -> bool:
        return self is not Timeliness.OVERDUE


class LegalDue(msgspec.Struct, frozen=True, kw_only=True):
    """The latest due date the law allows for an acceptance, and how it was reached."""

    due_at: datetime
    clock_start: datetime  # where counting began (after the cut-off / non-working-day shift)
    procedure_code: str
    procedure_version: str
    calendar_version: str
    rule: str  # human-readable: which unit and shift produced the date


class ReceiptCheck(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt's promised date against the law. ``later_than_law`` receipts are flagged."""

    verdict: Literal["within_law", "within_exception", "later_than_law"]
    receipt_due_at: datetime
    legal_due_at: datetime
    exception_due_at: datetime | None  # the ceiling in the procedure's stated special case, if any
    working_days_beyond_law: int  # how far the receipt overshoots the standard time (0 if not)
    procedure_version: str
    calendar_version: str

    @property
    def flagged(self) -> bool:
        return self.verdict == "later_than_law"


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """One dossier judged at one instant."""

    dossier_id: str
    status: int | None
    timeliness: Timeliness | None  # None: not accepted, so no clock
    resolved: bool
    original_due_at: datetime | None
    effective_due_at: datetime | None
    judged_due_at: datetime | None  # the date judged against, moved later by the paused working time
    paused: timedelta = timedelta()  # working time the clock stood still
    waiting: Literal["supplement", "financial"] | None = None  # the open sub-buckets of the report
    reason: str = ""
    calendar_version: str = ""
    procedure_version: str | None = None


# --- legal due date -----------------------------------------------------------------


def legal_due(accepted_at: datetime, procedure: Procedure, calendar: WorkCalendar) -> LegalDue:
    """The legal due date of a dossier accepted at ``accepted_at``.

    Acceptance on a non-working day, after office hours, or after the
    procedure's cut-off (15:00 for same-day procedures) counts from the next
    working day's opening.
    """
    start, shift = _clock_start(accepted_at, procedure, calendar)
    due = _count(start, procedure.time_unit, procedure.legal_time, calendar)
    rule = f"{procedure.legal_time} {procedure.time_unit.value}" + (f"; {shift}" if shift else "")
    return LegalDue(due_at=due, clock_start=start, procedure_code=procedure.code,
                    procedure_version=procedure.version, calendar_version=calendar.version, rule=rule)


def _clock_start(accepted_at: datetime, procedure: Procedure, calendar: WorkCalendar) -> tuple[datetime, str]:
    local = calendar.local(accepted_at)
    if not calendar.is_working_day(local.date()):
        day = calendar.next_working_day(local.date())
        return calendar.opens_at(day), f"accepted on a non-working day, counted from {day}"
    if procedure.cutoff is not None and local.time() > procedure.cutoff:
        day = calendar.next_working_day(local.date())
        return calendar.opens_at(day), f"accepted after the {procedure.cutoff:%H:%M} cut-off, counted from {day}"
    if local >= calendar.closes_at(local.date()):
        # After office hours (an online dossier accepted in the evening) is no working time either.
        day = calendar.next_working_day(local.date())
        return calendar.opens_at(day), f"accepted after office hours, counted from {day}"
    return local, ""


def _count(start: datetime, unit: TimeUnit, amount: int, calendar: WorkCalendar) -> datetime:
    day = start.date()
    if unit is TimeUnit.SAME_DAY:
        return calendar.closes_at(day)
    if unit is TimeUnit.WORKING_DAYS:
        return calendar.closes_at(calendar.add_working_days(day, amount))
    if unit is TimeUnit.CALENDAR_DAYS:
        # Civil Code art. 147-148: the first day is not counted; a period ending on a
        # day off ends with the next working day.
        return calendar.closes_at(calendar.next_working_day(day + timedelta(days=amount), include_today=True))
    return calendar.add_working_time(start, timedelta(hours=amount))


def check_receipt(accepted_at: datetime, receipt_due_at: datetime, procedure: Procedure,
                  calendar: WorkCalendar, policy: SlaPolicy = DEFAULT_POLICY) -> ReceiptCheck:
    """Validate a receipt's due date: does it promise later than the law allows?"""
    legal = legal_due(accepted_at, procedure, calendar).due_at
    exception = None
    if procedure.exception_time is not None and procedure.exception_unit is not None:
        start, _ = _clock_start(accepted_at, procedure, calendar)
        exception = _count(start, procedure.exception_unit, procedure.exception_time, calendar)
    if not _later(receipt_due_at, legal, policy, calendar):
        verdict = "within_law"
    elif exception is not None and not _later(receipt_due_at, exception, policy, calendar):
        verdict = "within_exception"
    else:
        verdict = "later_than_law"
    beyond = calendar.working_days_between(calendar.local_date(legal), calendar.local_date(receipt_due_at))
    return ReceiptCheck(verdict=verdict, receipt_due_at=receipt_due_at, legal_due_at=legal,
                        exception_due_at=exception, working_days_beyond_law=beyond,
                        procedure_version=procedure.version, calendar_version=calendar.version)


def _later(a: datetime, b: datetime, policy: SlaPolicy, calendar: WorkCalendar) -> bool:
    if policy.boundary == "date":
        return calendar.local_date(a) > calendar.local_date(b)
    return a > b


# --- pauses -------------------------------------------------------------------------


def paused_time(pauses: tuple[Pause, ...], at: datetime, calendar: WorkCalendar, *,
                financial_pauses: bool, since: datetime | None = None) -> timedelta:
    """Working time the clock stood still up to ``at``.

    Processing-stage supplements always pause it; financial-obligation waits
    only when the procedure excludes them from its time limit. Only the
    waiting after ``since`` counts (an extension letter's new date already
    accounts for the waiting before it, but not for a wait that goes on after
    it). A pause still open at ``at`` counts up to ``at``.
    """
    total = timedelta()
    for pause in pauses:
        if pause.kind == "financial" and not financial_pauses:
            continue
        start = pause.start if since is None else max(pause.start, since)
        end = pause.end if pause.end is not None and pause.end <= at else at
        if end > start:
            total += calendar.working_time_between(start, end)
    return total


def judged_due(state: DossierState, against: Literal["original", "effective"], at: datetime,
               calendar: WorkCalendar, policy: SlaPolicy, procedure: Procedure | None) -> tuple[datetime, timedelta]:
    """The due instant to judge against, moved later by the paused working time."""
    extended = against == "effective" and state.extended_due_at is not None
    base = state.due_at if against == "effective" else state.original_due_at
    if base is None:  # cannot happen for a folded dossier: accepted events must carry due_at
        raise ValueError(f"dossier {state.dossier_id} has no due date")
    if policy.boundary == "date":
        # The due *date* is what the receipt promises: the whole working day is available.
        base = calendar.closes_at(calendar.local_date(base))
    financial = procedure.financial_wait_pauses if procedure is not None else False
    paused = paused_time(state.pauses, at, calendar, financial_pauses=financial,
                         since=state.extended_at if extended else None)
    return (calendar.add_working_time(base, paused) if paused else base), paused


# --- classification -----------------------------------------------------------------


def classify(state: DossierState, at: datetime, *, calendar: WorkCalendar, catalogue: Catalogue | None = None,
             policy: SlaPolicy = DEFAULT_POLICY) -> Verdict:
    """Judge a dossier folded as of ``at``.

    Resolved (finished: result ready, or stopped / refused / withdrawn first):
    before / on / over due against the original date by default. Open: within
    due / due soon / overdue at ``at`` against the effective date by default.
    """
    procedure = catalogue.find(state.procedure_code, state.accepted_at) if catalogue else None
    base = dict(dossier_id=state.dossier_id, status=state.status, original_due_at=state.original_due_at,
                effective_due_at=state.due_at, calendar_version=calendar.version,
                procedure_version=state.procedure_version or (procedure.version if procedure else None))
    if state.accepted_at is None or state.original_due_at is None:
        return Verdict(timeliness=None, resolved=state.finished_at is not None, judged_due_at=None,
                       reason="not accepted: no clock", **base)
    if state.finished_at is not None:
        due, paused = judged_due(state, policy.judge_resolved_against, state.finished_at, calendar, policy, procedure)
        timeliness, reason = _resolved(state, state.finished_at, due, calendar, policy)
        return Verdict(timeliness=timeliness, resolved=True, judged_due_at=due, paused=paused, reason=reason, **base)
    due, paused = judged_due(state, policy.judge_open_against, at, calendar, policy, procedure)
    timeliness, reason = _open(state, at, due, calendar, policy)
    return Verdict(timeliness=timeliness, resolved=False, judged_due_at=due, paused=paused, reason=reason,
                   waiting=_waiting(state), **base)


def _second_supplement(state: DossierState, policy: SlaPolicy) -> bool:
    return policy.second_supplement_is_overdue and state.processing_supplements > 1


def _resolved(state: DossierState, finished_at: datetime, due: datetime, calendar: WorkCalendar,
              policy: SlaPolicy) -> tuple[Timeliness, str]:
    if _second_supplement(state, policy):
        return Timeliness.OVERDUE, f"{state.processing_supplements} processing-stage supplement requests"
    finished_day, due_day = calendar.local_date(finished_at), calendar.local_date(due)
    if _later(finished_at, due, policy, calendar):
        return Timeliness.OVERDUE, f"finished {finished_day} after due {due_day}"
    if finished_day < due_day:
        return Timeliness.BEFORE_DUE, f"finished {finished_day}, before due {due_day}"
    return Timeliness.ON_DUE, f"finished on the due date {due_day}"


def _open(state: DossierState, at: datetime, due: datetime, calendar: WorkCalendar,
          policy: SlaPolicy) -> tuple[Timeliness, str]:
    if _second_supplement(state, policy):
        return Timeliness.OVERDUE, f"{state.processing_supplements} processing-stage supplement requests"
    if _later(at, due, policy, calendar):
        return Timeliness.OVERDUE, f"due {calendar.local_date(due)} has passed"
    if _left(at, due, calendar, policy) <= _horizon(policy):
        return Timeliness.DUE_SOON, f"due {calendar.local_date(due)}, within the due-soon horizon"
    return Timeliness.WITHIN_DUE, f"due {calendar.local_date(due)}"


def _left(at: datetime, due: datetime, calendar: WorkCalendar, policy: SlaPolicy) -> timedelta:
    if policy.due_soon_unit == "clock_hours":
        return due - at
    return calendar.working_time_between(at, due)


def _horizon(policy: SlaPolicy) -> timedelta:
    return timedelta(hours=policy.due_soon_within)


def _waiting(state: DossierState) -> Literal["supplement", "financial"] | None:
    return {5: "supplement", 6: "financial"}.get(state.status or 0)  # type: ignore[return-value]
