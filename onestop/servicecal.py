"""When each commune's counter is open: the service calendar, beside the legal calendar.

The legal calendar (``onestop.workcal``) decides due dates, and nothing here
changes it: a commune opening on a Saturday does not make Saturday a legal
working day. The service calendar says when a commune actually serves people:

- on legal working days, its counter's regular hours (the legal office hours
  unless the file says otherwise);
- declared weekend service days, on which the counter opens on a day off;
- village (outreach) service days, on which officers receive dossiers in the villages;
- declared closures, on which the counter is closed although the law says it works;
- no-appointment days, on which listed procedures are resolved on the spot.

The declarations come from a CSV file a province edits (``onestop/data/service-calendar.csv``
by default, ``ONESTOP_SERVICE_CALENDAR_FILE`` to replace it; format in
``onestop.servicefile`` and docs/domain.md). ``ServiceCalendar.version`` names the
file and the legal calendar it was read against, like ``WorkCalendar.version``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable

import msgspec

from onestop.servicefile import (ALL_COMMUNES, Declaration, Kind, ServiceFile, ServiceFileError, Span,
                                 parse_service_file)
from onestop.workcal import WorkCalendar, default_calendar

__all__ = ["DayKind", "ServiceCalendar", "ServiceDay", "ServiceFileError", "default_service_calendar",
           "is_counter_open", "load_service_calendar"]

PACKAGED = "onestop/data/service-calendar.csv"


class DayKind(str, enum.Enum):
    """What a commune's day is, for the counter."""

    REGULAR = "regular"  # a legal working day, counter in its regular hours
    WEEKEND_SERVICE = "weekend_service"  # a day off with the counter open
    VILLAGE_SERVICE = "village_service"  # a day off with outreach sessions only
    CLOSED = "closed"  # a declared closure
    DAY_OFF = "day_off"  # not a legal working day, nothing declared


class ServiceDay(msgspec.Struct, frozen=True):
    """One commune's service on one local day."""

    commune_code: str
    day: date
    legal_working_day: bool
    counter: tuple[Span, ...]  # counter sessions (local times); empty when the counter is closed
    village: tuple[Span, ...]  # outreach sessions in the villages
    closure: str | None = None  # why the counter is closed on a legal working day
    no_appointment: frozenset[str] = frozenset()  # procedures resolved on the spot today

    @property
    def kind(self) -> DayKind:
        if self.closure is not None:
            return DayKind.CLOSED
        if self.legal_working_day:
            return DayKind.REGULAR
        if self.counter:
            return DayKind.WEEKEND_SERVICE
        return DayKind.VILLAGE_SERVICE if self.village else DayKind.DAY_OFF

    @property
    def counter_open(self) -> bool:
        return bool(self.counter)

    @property
    def is_no_appointment_day(self) -> bool:
        return bool(self.no_appointment)


def _within(spans: tuple[Span, ...], clock: time) -> bool:
    return any(start <= clock < end for start, end in spans)


class ServiceCalendar:
    """The service days of every commune, read against one legal calendar."""

    def __init__(self, declarations: Iterable[Declaration], legal: WorkCalendar | None = None, *,
                 source: str = "<code>", file_version: str = "declarations") -> None:
        self.legal = legal or default_calendar()
        self.source = source
        self.version = f"{file_version}+{self.legal.version}"
        self._by_commune: dict[str, list[Declaration]] = {}
        for d in declarations:
            self._by_commune.setdefault(d.commune_code, []).append(d)
        self._days: dict[tuple[str, date], ServiceDay] = {}
        self._check_weekend_dates()

    @classmethod
    def from_file(cls, parsed: ServiceFile, legal: WorkCalendar | None = None) -> "ServiceCalendar":
        return cls(parsed.declarations, legal, source=parsed.source, file_version=parsed.version)

    def _check_weekend_dates(self) -> None:
        for declarations in self._by_commune.values():
            for d in declarations:
                if d.kind is Kind.WEEKEND_SERVICE and d.date is not None and self.legal.is_working_day(d.date):
                    raise ServiceFileError(self.source, d.line or None, f"commune {d.commune_code}: {d.date} is a "
                                           f"legal working day ({self.legal.version}); a weekend service day must "
                                           "be a day off")

    def declared_communes(self) -> list[str]:
        return sorted(c for c in self._by_commune if c != ALL_COMMUNES)

    def all_declarations(self) -> list[Declaration]:
        return [d for code in sorted(self._by_commune) for d in self._by_commune[code]]

    def declarations(self, commune_code: str) -> list[Declaration]:
        return [*self._by_commune.get(ALL_COMMUNES, ()), *self._by_commune.get(commune_code, ())]

    def day(self, commune_code: str, day: date) -> ServiceDay:
        key = (commune_code, day)
        found = self._days.get(key)
        if found is None:
            found = self._days[key] = self._service_day(commune_code, day)
        return found

    def at(self, commune_code: str, at: datetime) -> tuple[ServiceDay, time]:
        local = self.legal.local(at)
        return self.day(commune_code, local.date()), local.time()

    def is_counter_open(self, commune_code: str, at: datetime) -> bool:
        """True while the commune's counter receives people at ``at`` (not outreach sessions)."""
        service, clock = self.at(commune_code, at)
        return _within(service.counter, clock)

    def is_receiving(self, commune_code: str, at: datetime) -> bool:
        """True while the counter or an outreach session in the villages receives people."""
        service, clock = self.at(commune_code, at)
        return _within(service.counter, clock) or _within(service.village, clock)

    def _service_day(self, commune_code: str, day: date) -> ServiceDay:
        applying = [d for d in self.declarations(commune_code) if d.applies(day)]
        working = self.legal.is_working_day(day)
        closure = next((d for d in applying if d.kind is Kind.CLOSURE), None)
        if closure is not None:
            return ServiceDay(commune_code, day, working, (), (), closure=closure.note or "declared closure")
        regular = self._regular_hours(applying)
        if working:
            counter = regular
        else:
            counter = _union(d.hours or regular for d in applying if d.kind is Kind.WEEKEND_SERVICE)
        village = _union(d.hours or regular for d in applying if d.kind is Kind.VILLAGE_SERVICE)
        listed = frozenset().union(*(d.procedures for d in applying if d.kind is Kind.NO_APPOINTMENT)) \
            if counter else frozenset()
        return ServiceDay(commune_code, day, working, counter, village, no_appointment=listed)

    def _regular_hours(self, applying: list[Declaration]) -> tuple[Span, ...]:
        """The commune's own hours row in force, else the province's (``*``), else the legal office hours."""
        rows = [d for d in applying if d.kind is Kind.HOURS]
        if rows:
            best = max(rows, key=lambda d: (d.commune_code != ALL_COMMUNES, d.valid_from))
            return best.hours
        return self.legal.office_hours.sessions


def _union(groups: Iterable[tuple[Span, ...]]) -> tuple[Span, ...]:
    """Sessions of several declarations on one day, merged where they overlap."""
    merged: list[list[time]] = []
    for start, end in sorted(s for group in groups for s in group):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((s, e) for s, e in merged)


def load_service_calendar(path: str | Path | None = None, *, legal: WorkCalendar | None = None,
                          known_procedures: Iterable[str] | None = None) -> ServiceCalendar:
    """Load and validate a service-calendar file; ``None`` loads the packaged one.

    With ``known_procedures`` (e.g. the catalogue's codes), a no-appointment row that lists a
    procedure outside it is an error.
    """
    if path is None:
        raw, source = (resources.files("onestop") / "data" / "service-calendar.csv").read_bytes(), PACKAGED
    else:
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ServiceFileError(source, None, f"cannot read the file: {exc.strerror or exc}") from exc
    parsed = parse_service_file(raw, source)
    if known_procedures is not None:
        _check_procedures(parsed, set(known_procedures))
    return ServiceCalendar.from_file(parsed, legal)


def _check_procedures(parsed: ServiceFile, known: set[str]) -> None:
    for d in parsed.declarations:
        unknown = sorted(d.procedures - known)
        if unknown:
            raise ServiceFileError(parsed.source, d.line, f"commune {d.commune_code}: procedure(s) not in the "
                                   f"catalogue: {', '.join(unknown)}")


@lru_cache(maxsize=1)
def default_service_calendar() -> ServiceCalendar:
    return load_service_calendar()


def is_counter_open(commune_code: str, at: datetime, calendar: ServiceCalendar | None = None) -> bool:
    """Whether ``commune_code``'s counter receives people at ``at`` (default: the packaged service calendar).

    A silent commune is only suspicious while its counter is open: nights, days off without a
    declared service day and declared closures are expected silence.
    """
    return (calendar or default_service_calendar()).is_counter_open(commune_code, at)
