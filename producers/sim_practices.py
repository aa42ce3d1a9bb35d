"""The communes' service practices in the simulator: who declares what, and when service days draw arrivals.

The simulation's service calendar is the province's file (``service_calendar_file``; ``"packaged"``
for the packaged one), plus declarations the simulator makes up for a share of the simulated
communes (``no_appointment_share``, ``weekend_service_share``, ``village_service_share``): a
no-appointment weekday with the short procedures listed, Saturday-morning counter service, or
Saturday-morning village service. Which communes is drawn from a generator of its own
(``Random(f"{seed}:practices")``), so the rest of the run does not shift when a share changes.

Days off with a service session (weekend service at the counter, village service in the
villages) get arrival windows of their own: ``service_day_volume`` times the serving communes'
share of an average working day, apportioned with the working days so the total stays exact.
Rates and sources: docs/simulator.md, "Service practices".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta
from random import Random
from typing import NamedTuple

from onestop.communes import Commune
from onestop.servicecal import DayKind, ServiceCalendar, load_service_calendar
from onestop.servicefile import Declaration, Kind, ServiceFileError
from onestop.workcal import WorkCalendar
from producers.sim_config import SimulationError

# Procedures a desk can resolve on the spot: the same-day ones, and the short multi-day ones
# whose legal time allows a no-appointment day to promise them (certified contracts, the
# marital-status certificate, a household-business change).
ON_THE_SPOT = frozenset({"2.000815", "2.000884", "1.001193", "1.000656", "1.000894", "2.000635", "LOCAL-CT-0001",
                         "1.004873", "2.000720"})
SATURDAY = 5
SATURDAY_MORNING = ((time(7, 30), time(11, 30)),)
# Weekend service days serve people with merit and social-protection beneficiaries (Đồng Lộc's
# "Ngày nghỉ vì Nhân dân"): their procedures, and the group the source records.
BENEFICIARY_PROCEDURES: dict[str, str] = {
    "1.010833": "người có công", "1.001776": "bảo trợ xã hội", "1.001731": "bảo trợ xã hội",
    "1.001699": "bảo trợ xã hội",
}
GROUP_OF_FIELD = {"Người có công": "người có công", "Bảo trợ xã hội": "bảo trợ xã hội"}


@dataclass(frozen=True)
class Declared:
    """Which simulated communes hold which practice (made up by the simulator or read from the file)."""

    no_appointment: tuple[str, ...] = ()
    weekend_service: tuple[str, ...] = ()
    village_service: tuple[str, ...] = ()


class ServiceWindow(NamedTuple):
    """A day off on which some communes serve: arrivals only go to them."""

    day: date
    kind: str  # weekend_service or village_service
    start: int  # POSIX seconds
    end: int
    weight: float  # share of an average working day of the whole province
    communes: tuple[int, ...]  # indices into the simulated communes


def _made_up(cfg, communes: tuple[Commune, ...]) -> tuple[list[Declaration], Declared]:
    rng = Random(f"{cfg.seed}:practices")
    codes = [c.code for c in communes]
    pick = lambda share: sorted(rng.sample(codes, round(share * len(codes)))) if share else []  # noqa: E731
    no_appt, weekend = pick(cfg.no_appointment_share), pick(cfg.weekend_service_share)
    village = sorted(rng.sample([c for c in codes if c not in weekend],
                                min(round(cfg.village_service_share * len(codes)), len(codes) - len(weekend))))
    rows = [Declaration(commune_code=c, kind=Kind.NO_APPOINTMENT, weekdays=frozenset({cfg.no_appointment_weekday}),
                        procedures=ON_THE_SPOT & set(cfg.procedure_mix), note="simulated")
            for c in no_appt if ON_THE_SPOT & set(cfg.procedure_mix)]
    rows += [Declaration(commune_code=c, kind=Kind.WEEKEND_SERVICE, weekdays=frozenset({SATURDAY}),
                         hours=SATURDAY_MORNING, note="simulated") for c in weekend]
    rows += [Declaration(commune_code=c, kind=Kind.VILLAGE_SERVICE, weekdays=frozenset({SATURDAY}),
                         hours=SATURDAY_MORNING, note="simulated") for c in village]
    return rows, Declared(tuple(no_appt), tuple(weekend), tuple(village))


def simulation_calendar(cfg, communes: tuple[Commune, ...], legal: WorkCalendar) -> ServiceCalendar | None:
    """The service calendar the run follows, or None when practices are not simulated."""
    if not cfg.models_practices:
        return None
    ours = {c.code for c in communes}
    declared: list[Declaration] = []
    source = "simulated"
    if cfg.service_calendar_file:
        path = None if cfg.service_calendar_file == "packaged" else cfg.service_calendar_file
        try:
            from_file = load_service_calendar(path, legal=legal)
        except ServiceFileError as exc:
            raise SimulationError(f"service calendar: {exc}") from None
        declared = [d for d in from_file.all_declarations() if d.commune_code in ours or d.commune_code == "*"]
        source = from_file.version.split("+")[0]
    made_up, _ = _made_up(cfg, communes)
    return ServiceCalendar([*declared, *made_up], legal, source=source, file_version=f"{source}+simulated")


def declared_practices(calendar: ServiceCalendar | None, communes: tuple[Commune, ...], start: date,
                       days: int) -> Declared:
    """Which simulated communes hold each practice in the period (for the summary and the tests)."""
    if calendar is None:
        return Declared()
    found: dict[str, set[str]] = {"no": set(), "weekend": set(), "village": set()}
    for i in range(days):
        day = start + timedelta(days=i)
        for c in communes:
            sd = calendar.day(c.code, day)
            if sd.is_no_appointment_day:
                found["no"].add(c.code)
            if sd.kind is DayKind.WEEKEND_SERVICE:
                found["weekend"].add(c.code)
            if sd.village and not sd.legal_working_day:
                found["village"].add(c.code)
    return Declared(tuple(sorted(found["no"])), tuple(sorted(found["weekend"])), tuple(sorted(found["village"])))


def service_windows(calendar: ServiceCalendar | None, communes: tuple[Commune, ...], sizes: list[float],
                    start: date, days: int, volume: float, not_before: int | None = None) -> list[ServiceWindow]:
    """The arrival windows of days off with counter or village sessions, in time order."""
    if calendar is None or volume <= 0:
        return []
    legal, total = calendar.legal, sum(sizes) or 1.0
    day_length = sum((_seconds(e) - _seconds(s)) for s, e in legal.office_hours.sessions)
    out: list[ServiceWindow] = []
    for i in range(days):
        day = start + timedelta(days=i)
        if legal.is_working_day(day):
            continue  # on working days every commune receives in its regular flow
        by_session: dict[tuple[str, time, time], list[int]] = {}
        for index, c in enumerate(communes):
            sd = calendar.day(c.code, day)
            for kind, spans in (("weekend_service", sd.counter), ("village_service", sd.village)):
                for s, e in spans:
                    by_session.setdefault((kind, s, e), []).append(index)
        for (kind, s, e), members in sorted(by_session.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            begin, end = int(legal.at(day, s).timestamp()), int(legal.at(day, e).timestamp())
            if not_before is not None:
                begin = max(begin, not_before)
            if end <= begin:
                continue
            share = sum(sizes[m] for m in members) / total
            out.append(ServiceWindow(day, kind, begin, end, volume * share * (end - begin) / day_length, tuple(members)))
    return out


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second
