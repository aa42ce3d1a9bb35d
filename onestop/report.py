"""The official Form 06 report (Form 06/VPCP/KSTT, Circular 01/2020/TT-VPCP) as a pure function.

For a period [start, end), per unit and per field or procedure:

- received = carried over from before the period + new online + new in person or by post;
- resolved = before due + on due + overdue (result ready inside the period);
- in progress = within due + overdue (still open at the end of the period);
- stopped, refused and withdrawn inside the period are counted apart.

Every received dossier lands in exactly one of resolved, in progress, stopped,
refused or withdrawn, so ``received == resolved + in progress + stopped +
refused + withdrawn`` holds for any event history (``Form06Row.balances``).

Units: rows are grouped by the *handling* commune, because timeliness belongs
to the unit that resolves a dossier and the identity needs one unit per row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Iterable, Literal, Sequence

import msgspec

from onestop.catalogue import Catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.fold import DossierState, fold
from onestop.sla import DEFAULT_POLICY, SlaPolicy, Timeliness, classify
from onestop.workcal import WorkCalendar

GroupBy = Literal["handling_commune", "field", "procedure"]
GROUP_BY_CHOICES: tuple[str, ...] = ("handling_commune", "field", "procedure")
UNKNOWN_FIELD = "?"  # a procedure missing from the catalogue has no known field

_CLOSED_APART = {
    EventType.PROCESSING_STOPPED.value: "stopped",
    EventType.REFUSED.value: "refused",
    EventType.WITHDRAWAL_REQUESTED.value: "withdrawn",
}
_RESOLVED_BUCKET = {
    Timeliness.BEFORE_DUE: "resolved_before_due",
    Timeliness.ON_DUE: "resolved_on_due",
    Timeliness.OVERDUE: "resolved_overdue",
}


class Form06Row(msgspec.Struct, frozen=True, kw_only=True):
    group: dict[str, str]  # e.g. {"handling_commune": "18754", "field": "Hộ tịch"}; {} for the total
    carried_over: int = 0  # accepted before the period, still open at its start
    new_online: int = 0
    new_in_person_or_post: int = 0
    received: int = 0
    resolved_before_due: int = 0
    resolved_on_due: int = 0
    resolved_overdue: int = 0
    resolved: int = 0
    in_progress_within_due: int = 0
    in_progress_overdue: int = 0
    in_progress: int = 0
    waiting_supplement: int = 0  # sub-bucket of in progress
    waiting_financial: int = 0  # sub-bucket of in progress
    stopped: int = 0
    refused: int = 0
    withdrawn: int = 0

    @property
    def balances(self) -> bool:
        """The Form 06 identity; a row that breaks it is a bug."""
        return self.received == self.resolved + self.in_progress + self.stopped + self.refused + self.withdrawn

    @property
    def on_time_rate(self) -> float | None:
        """Form 06 style: (before + on due) / resolved."""
        return (self.resolved_before_due + self.resolved_on_due) / self.resolved if self.resolved else None


class Form06Report(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    group_by: tuple[str, ...]
    rows: tuple[Form06Row, ...]
    total: Form06Row
    calendar_version: str
    catalogue_version: str | None = None


def histories(events: Iterable[DossierEvent]) -> dict[str, list[DossierEvent]]:
    """Events by dossier, in arrival order (the fold puts them in seq order)."""
    by_dossier: dict[str, list[DossierEvent]] = defaultdict(list)
    for event in events:
        by_dossier[event.dossier_id].append(event)
    return dict(by_dossier)


def states_as_of(events: Iterable[DossierEvent], until: datetime, *, inclusive: bool = False,
                 policy: SlaPolicy = DEFAULT_POLICY) -> dict[str, DossierState]:
    """Each dossier folded from the events that occurred before ``until`` (or at it, if inclusive)."""
    states = {}
    for dossier_id, history in histories(events).items():
        known = [e for e in history if e.occurred_at < until or (inclusive and e.occurred_at == until)]
        state = fold(known, allowed=policy.transitions)
        if state is not None:
            states[dossier_id] = state
    return states


def form06(events: Iterable[DossierEvent], start: datetime, end: datetime, *, calendar: WorkCalendar,
           catalogue: Catalogue | None = None, policy: SlaPolicy = DEFAULT_POLICY,
           group_by: Sequence[GroupBy] = ()) -> Form06Report:
    """Form 06 over [start, end) from a full event history; pure and deterministic."""
    if end <= start:
        raise ValueError(f"the period must not be empty: start {start} >= end {end}")
    unknown = [g for g in group_by if g not in GROUP_BY_CHOICES]
    if unknown:
        raise ValueError(f"cannot group by {unknown}; choose from {GROUP_BY_CHOICES}")
    # In progress is judged at the last instant of the period: a dossier due on the
    # period's last day is still within due when the books close.
    closing = end - timedelta(microseconds=1)
    counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for state in states_as_of(events, end, policy=policy).values():
        buckets = _buckets(state, start, closing, calendar, catalogue, policy)
        if buckets:
            counts[_group_key(state, group_by, catalogue)].update(buckets)
    rows = tuple(_row(dict(zip(group_by, key)), counts[key]) for key in sorted(counts))
    total = _row({}, sum(counts.values(), Counter()))
    return Form06Report(start=start, end=end, group_by=tuple(group_by), rows=rows, total=total,
                        calendar_version=calendar.version,
                        catalogue_version=catalogue.version if catalogue is not None else None)


def _buckets(state: DossierState, start: datetime, closing: datetime, calendar: WorkCalendar,
             catalogue: Catalogue | None, policy: SlaPolicy) -> list[str]:
    """The report columns one dossier counts in; empty if it is not part of the period."""
    if state.accepted_at is None or state.accepted_at > closing:
        return []  # never received: refused at reception, withdrawn before acceptance, still at the desk
    if state.finished_at is not None and state.finished_at < start:
        return []  # closed in an earlier period
    if state.accepted_at < start:
        arrival = "carried_over"
    else:
        arrival = "new_online" if state.channel == Channel.ONLINE else "new_in_person_or_post"
    if state.finished_at is not None and state.closed_by in _CLOSED_APART:
        return [arrival, _CLOSED_APART[state.closed_by]]
    verdict = classify(state, closing, calendar=calendar, catalogue=catalogue, policy=policy)
    if verdict.resolved:
        return [arrival, _RESOLVED_BUCKET[verdict.timeliness]]  # type: ignore[index]
    open_bucket = "in_progress_overdue" if verdict.timeliness is Timeliness.OVERDUE else "in_progress_within_due"
    waiting = [f"waiting_{verdict.waiting}"] if verdict.waiting else []
    return [arrival, open_bucket, *waiting]


def _group_key(state: DossierState, group_by: Sequence[GroupBy], catalogue: Catalogue | None) -> tuple[str, ...]:
    key = []
    for dimension in group_by:
        if dimension == "handling_commune":
            key.append(state.handling_commune_code)
        elif dimension == "procedure":
            key.append(state.procedure_code)
        else:
            procedure = catalogue.find(state.procedure_code, state.accepted_at) if catalogue else None
            key.append(procedure.field if procedure else UNKNOWN_FIELD)
    return tuple(key)


def _row(group: dict[str, str], c: Counter) -> Form06Row:
    received = c["carried_over"] + c["new_online"] + c["new_in_person_or_post"]
    resolved = c["resolved_before_due"] + c["resolved_on_due"] + c["resolved_overdue"]
    in_progress = c["in_progress_within_due"] + c["in_progress_overdue"]
    return Form06Row(group=group, received=received, resolved=resolved, in_progress=in_progress, **c)
