"""How the worker judges an open dossier against the clock, and when to look at it again.

A thin layer over the domain core's SLA clock (``onestop.sla``): it turns a
verdict into the buckets the IOC panels show and computes the next instant at
which the verdict can change (the deadline index fires there). The next
instant may be early; the dossier is simply judged again then.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import msgspec

from onestop.catalogue import Catalogue
from onestop.fold import DossierState
from onestop.sla import DEFAULT_POLICY, SlaPolicy, Timeliness, classify
from onestop.workcal import WorkCalendar

# Age of an open dossier since acceptance, in calendar days: (upper bound, label).
AGE_BUCKETS: tuple[tuple[int, str], ...] = ((1, "0-1d"), (3, "1-3d"), (7, "3-7d"), (15, "7-15d"), (30, "15-30d"))
OLDEST_AGE = ">30d"
MIN_STEP = timedelta(minutes=1)


class OpenVerdict(msgspec.Struct, frozen=True):
    sla: str  # within_due / due_soon / overdue
    escalated: bool
    judged_due_at: datetime | None
    paused: bool  # the clock stands still: no SLA transition until the dossier moves


class Evaluator:
    def __init__(self, calendar: WorkCalendar, catalogue: Catalogue, policy: SlaPolicy = DEFAULT_POLICY,
                 escalate_after_working_days: int = 3) -> None:
        self.calendar = calendar
        self.catalogue = catalogue
        self.policy = policy
        self.escalate_after = escalate_after_working_days
        self._last: tuple[DossierState, datetime, OpenVerdict] | None = None

    def field_of(self, state: DossierState) -> str:
        procedure = self.catalogue.find(state.procedure_code, state.accepted_at)
        return procedure.field if procedure is not None else "unknown"

    def open_verdict(self, state: DossierState, now: datetime) -> OpenVerdict:
        # The processor judges a dossier and then asks when to judge it again, with the same
        # state object and instant: answer the second question from the first.
        last = self._last
        if last is not None and last[0] is state and last[1] == now:
            return last[2]
        verdict = self._open_verdict(state, now)
        self._last = (state, now, verdict)
        return verdict

    def standing_due(self, state: DossierState) -> datetime | None:
        """An open dossier's due instant with every pause that has ended counted, and a running pause not yet:
        it does not depend on when it is asked (the instant a running pause began, else the last event)."""
        running = next((p.start for p in reversed(state.pauses) if p.end is None), None)
        at = running or state.last_event_at or state.accepted_at
        if at is None or state.accepted_at is None:
            return None
        return classify(state, at, calendar=self.calendar, catalogue=self.catalogue, policy=self.policy).judged_due_at

    def _open_verdict(self, state: DossierState, now: datetime) -> OpenVerdict:
        verdict = classify(state, now, calendar=self.calendar, catalogue=self.catalogue, policy=self.policy)
        sla = verdict.timeliness.value if verdict.timeliness is not None else Timeliness.WITHIN_DUE.value
        due = verdict.judged_due_at
        escalated = sla == Timeliness.OVERDUE.value and due is not None and self._overdue_days(due, now) >= self.escalate_after
        return OpenVerdict(sla, escalated, due, self.paused(state))

    def resolved_outcome(self, state: DossierState) -> str | None:
        if state.finished_at is None or state.accepted_at is None:
            return None
        verdict = classify(state, state.finished_at, calendar=self.calendar, catalogue=self.catalogue,
                           policy=self.policy)
        return verdict.timeliness.value if verdict.timeliness is not None else None

    def paused(self, state: DossierState) -> bool:
        """Whether the SLA clock stands still for ``state``."""
        if state.status == 5:
            return True
        if state.status == 6:
            procedure = self.catalogue.find(state.procedure_code, state.accepted_at)
            return bool(procedure and procedure.financial_wait_pauses)
        return False

    def _overdue_days(self, due: datetime, now: datetime) -> int:
        return self.calendar.working_days_between(self.calendar.local_date(due), self.calendar.local_date(now))

    # --- when to look again -------------------------------------------------------------

    def next_sla_check(self, verdict: OpenVerdict, now: datetime) -> datetime | None:
        if verdict.paused or verdict.judged_due_at is None or verdict.escalated:
            return None
        due = verdict.judged_due_at
        if verdict.sla == Timeliness.WITHIN_DUE.value:
            candidate = self._due_soon_starts(due)
        elif verdict.sla == Timeliness.DUE_SOON.value:
            candidate = self._overdue_starts(due)
        else:
            day = self.calendar.add_working_days(self.calendar.local_date(due), self.escalate_after)
            candidate = self.calendar.at(day, time.min)
        return max(candidate, now + MIN_STEP)

    def _overdue_starts(self, due: datetime) -> datetime:
        if self.policy.boundary == "date":
            return self.calendar.at(self.calendar.local_date(due) + timedelta(days=1), time.min)
        return due + timedelta(milliseconds=1)

    def _due_soon_starts(self, due: datetime) -> datetime:
        horizon = timedelta(hours=self.policy.due_soon_within)
        if self.policy.due_soon_unit == "clock_hours":
            return due - horizon
        return _back_working_time(self.calendar, due, horizon)


def age_bucket(accepted_at: datetime, now: datetime) -> tuple[str, datetime | None]:
    """The age label of an open dossier at ``now`` and when it moves to the next bucket."""
    age = now - accepted_at
    for days, label in AGE_BUCKETS:
        if age < timedelta(days=days):
            return label, accepted_at + timedelta(days=days)
    return OLDEST_AGE, None


def _back_working_time(calendar: WorkCalendar, at: datetime, amount: timedelta) -> datetime:
    """The earliest instant with at most ``amount`` of working time left before ``at``.

    When the amount ends exactly at the opening of a session, the non-working
    gap before it (night, lunch, weekend) has the same time left, so the answer
    is the end of the previous session: 8 working hours before Thursday 17:00
    is Wednesday 17:00, not Thursday 07:30.
    """
    cursor, remaining = calendar.local(at), amount
    for _ in range(60):
        for start, end in reversed(calendar.sessions(cursor.date())):
            stop = min(end, cursor)
            if stop <= start:
                continue
            if remaining == timedelta(0):
                return stop.astimezone(timezone.utc)
            if remaining < stop - start:
                return (stop - remaining).astimezone(timezone.utc)
            remaining -= stop - start
        cursor = calendar.at(cursor.date() - timedelta(days=1), time.max)
    return at - amount
