"""The communes' own service practices, measured on each dossier: same-day resolution, no-appointment
promises, weekend and village service activity, and the 766 §5.4 satisfaction counts.

A dossier's **reception** is judged once, when it is accepted, against the
service calendar (``onestop.servicecal``): the local day, where it was received
(the reception point, from the event or else from the channel), what kind of
service the commune held that day, and whether that day was a declared
no-appointment day for its procedure. The rest follows from the folded state:

- **same day**: received in person (counter or outreach) and resolved (result
  ready) on the same local day;
- **missed promise**: a listed procedure received at the counter on a declared
  no-appointment day and not resolved that day. It is known once that day has
  ended, and it is a different thing from legal lateness (the legal due date
  of a 3-working-day procedure is still days away);
- **service activity**: dossiers received on a weekend service day or in a
  village outreach session, by procedure and beneficiary group;
- **satisfaction** (``onestop.satisfaction``): per handling commune and month
  of the finish, finished dossiers, overdue ones, and those with a complaint or a
  bad rating.

``practice_keys`` turns one dossier into the counter keys the stream worker
adds up (``streams.counters``); ``recount`` folds raw events and adds up the
same keys, so a rebuild, a reconciliation and the live counters share one
definition. Definitions and their sources: docs/domain.md, "Service practices".
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from functools import lru_cache
from typing import Callable, Iterable, Mapping

import msgspec

from onestop.events import DossierEvent
from onestop.fold import DossierState, fold
from onestop.satisfaction import DEFAULT_SATISFACTION, SatisfactionPolicy, unsatisfied
from onestop.servicecal import DayKind, ServiceCalendar
from onestop.workcal import VN_TZ

IN_PERSON = frozenset({"counter", "outreach"})
POINT_OF_CHANNEL = {1: "counter", 2: "online", 3: "postal"}  # v1 events: the channel says enough
REGULAR, WEEKEND, VILLAGE = "regular", "weekend_service", "village_service"
Key = tuple


class Reception(msgspec.Struct, frozen=True, array_like=True):
    """How and when a dossier was received, judged at acceptance and kept with the dossier."""

    day: date  # local date of acceptance
    point: str  # counter, outreach, online, postal
    service: str  # regular, weekend_service or village_service
    no_appointment_day: bool  # the commune declared this weekday a no-appointment day
    listed: bool  # and the dossier's procedure is on that day's list
    calendar_version: str  # the service calendar that judged it


@lru_cache(maxsize=1 << 14)  # the worker asks for the same instants before and after each event
def local_date(at: datetime) -> date:
    """The day in Asia/Ho_Chi_Minh, where the service calendar and the counters decide days."""
    return at.astimezone(VN_TZ).date()


def reception_point_of(state: DossierState) -> str:
    return state.reception_point or POINT_OF_CHANNEL.get(state.channel, "counter")


def judge_reception(state: DossierState, calendar: ServiceCalendar) -> Reception | None:
    """The dossier's reception, or None before it is accepted."""
    if state.accepted_at is None:
        return None
    day = calendar.legal.local_date(state.accepted_at)
    service_day = calendar.day(state.commune_code, day)
    point = reception_point_of(state)
    if point == "counter" and state.reception_point is None and service_day.kind is DayKind.VILLAGE_SERVICE:
        point = "outreach"  # a v1 in-person dossier on a day the officers were in the villages
    if point == "outreach":
        service = VILLAGE
    elif service_day.kind is DayKind.WEEKEND_SERVICE:
        service = WEEKEND
    else:
        service = REGULAR
    listed = state.procedure_code in service_day.no_appointment
    return Reception(day, point, service, service_day.is_no_appointment_day, listed, calendar.version)


def resolved_same_day(state: DossierState, reception: Reception) -> bool:
    """Received in person and the result ready on the same local day."""
    return (reception.point in IN_PERSON and state.closed_by == "result_ready" and state.finished_at is not None
            and local_date(state.finished_at) == reception.day)


def promised(reception: Reception) -> bool:
    """Received at the counter on a no-appointment day, for a procedure on that day's list."""
    return reception.no_appointment_day and reception.listed and reception.point == "counter"


def missed_promise(state: DossierState, reception: Reception, as_of: datetime) -> bool:
    """A promise of a no-appointment day not kept: not resolved on the day, and that day is over at ``as_of``."""
    return promised(reception) and local_date(as_of) > reception.day and not resolved_same_day(state, reception)


def practice_keys(state: DossierState, reception: Reception | None, outcome: str | None,
                  policy: SatisfactionPolicy = DEFAULT_SATISFACTION) -> tuple[Key, ...]:
    """The counter keys one dossier adds one to (each at most once).

    - ``("sameday", day, commune, procedure, point, no_appointment_day, listed, measure)`` with
      measure ``received`` or ``same_day``, for in-person receptions;
    - ``("service", day, commune, service, point, procedure, beneficiary_group)`` for receptions on
      weekend service days and in outreach sessions;
    - ``("satisfaction", month, handling_commune, measure)`` with measure ``finished``, ``overdue``,
      ``complaint_or_bad_rating``, ``rated``, once the dossier finished (``outcome`` is its class).
    """
    keys: list[Key] = []
    if reception is not None:
        day = reception.day.isoformat()
        if reception.point in IN_PERSON:
            head = ("sameday", day, state.commune_code, state.procedure_code, reception.point,
                    reception.no_appointment_day, reception.listed)
            keys.append((*head, "received"))
            if resolved_same_day(state, reception):
                keys.append((*head, "same_day"))
        if reception.service != REGULAR:
            keys.append(("service", day, state.commune_code, reception.service, reception.point,
                         state.procedure_code, state.beneficiary_group or ""))
    if outcome is not None and state.finished_at is not None:
        month = local_date(state.finished_at).replace(day=1).isoformat()
        head = ("satisfaction", month, state.handling_commune_code)
        keys.append((*head, "finished"))
        if outcome == "overdue":
            keys.append((*head, "overdue"))
        if unsatisfied(state, policy):
            keys.append((*head, "complaint_or_bad_rating"))
        if state.ratings:
            keys.append((*head, "rated"))
    return tuple(keys)


def recount(events: Iterable[DossierEvent], calendar: ServiceCalendar, outcome_of: Callable[[DossierState], str | None],
            policy: SatisfactionPolicy = DEFAULT_SATISFACTION) -> Counter:
    """The practice counters of a set of raw events, from scratch: what the worker's counters must add up to.

    ``outcome_of(state)`` classifies a finished dossier (``before_due``/``on_due``/``overdue``), e.g.
    ``streams.evaluate.Evaluator.resolved_outcome``; reconciliation passes the worker's own.
    """
    per_dossier: dict[str, list[DossierEvent]] = {}
    for e in events:
        per_dossier.setdefault(e.dossier_id, []).append(e)
    totals: Counter = Counter()
    for evs in per_dossier.values():
        state = fold(sorted(evs, key=lambda e: e.seq))
        if state is None:
            continue
        reception = judge_reception(state, calendar)
        outcome = outcome_of(state) if state.finished_at is not None and state.accepted_at is not None else None
        totals.update(practice_keys(state, reception, outcome, policy))
    return totals


class SameDayRow(msgspec.Struct, frozen=True):
    """Same-day resolution of one commune, procedure and weekday, on no-appointment days or on other days."""

    commune_code: str
    procedure_code: str
    weekday: int  # 0 = Monday
    no_appointment_day: bool
    received: int  # received in person
    same_day: int  # of those, resolved the same day
    promised: int  # listed procedures received at the counter on a no-appointment day
    kept: int  # of those, resolved the same day

    @property
    def rate(self) -> float | None:
        return self.same_day / self.received if self.received else None


def same_day_table(counts: Mapping[Key, int], *, as_of: date) -> list[SameDayRow]:
    """Same-day rows from ``sameday`` counter keys, over the days before ``as_of`` (whose promises are settled)."""
    rows: dict[tuple, list[int]] = {}
    for key, n in counts.items():
        if key[0] != "sameday" or not n:
            continue
        _, day, commune, procedure, point, no_appt, listed, measure = key
        when = date.fromisoformat(day)
        if when >= as_of:
            continue
        row = rows.setdefault((commune, procedure, when.weekday(), no_appt), [0, 0, 0, 0])
        kept = measure == "same_day"
        row[kept] += n
        if no_appt and listed and point == "counter":
            row[2 + kept] += n
    return [SameDayRow(c, p, w, a, *v) for (c, p, w, a), v in sorted(rows.items())]


def missed_promises(rows: Iterable[SameDayRow]) -> dict[str, int]:
    """Missed promises per commune: promised and not kept."""
    out: Counter = Counter()
    for row in rows:
        out[row.commune_code] += row.promised - row.kept
    return {c: n for c, n in sorted(out.items()) if n}
