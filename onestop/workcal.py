"""The civil-service working calendar of Vietnam, decided in Asia/Ho_Chi_Minh.

Working days are Monday to Friday, minus statutory holidays, plus the
make-up Saturdays the government swaps in each year. Both come from the
``holidays`` package (country VN: holidays as dates, make-up Saturdays as
``weekend_workdays``). The package is exact up to 2026 and estimates later
years, and provinces close offices for storms or swap days locally, so a
provincial override file can add closures and working days (format in
docs/domain.md).

Hour-based procedures count working hours inside office hours: by default
07:30–11:30 and 13:00–17:00, eight hours, which is one working day.

Every calendar has a ``version`` string, recorded with each decision, so a
dossier can always be re-judged by the calendar that judged it.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

try:
    VN_TZ: tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tzdata on the host: Vietnam has kept UTC+7 since 1975
    from datetime import timezone

    VN_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

_SEARCH_LIMIT_DAYS = 3660  # an override that closes ten years in a row is a mistake, not a calendar


class CalendarError(ValueError):
    """An invalid override file or calendar setting. The message names the file and the problem."""


class OfficeHours(BaseModel):
    """The sessions of a working day, in local time; working hours only accrue inside them."""

    model_config = ConfigDict(frozen=True)

    sessions: tuple[tuple[time, time], ...] = ((time(7, 30), time(11, 30)), (time(13, 0), time(17, 0)))

    @field_validator("sessions")
    @classmethod
    def _ordered(cls, sessions: tuple[tuple[time, time], ...]) -> tuple[tuple[time, time], ...]:
        if not sessions:
            raise ValueError("at least one session is needed")
        previous_end = time.min
        for start, end in sessions:
            if not start < end:
                raise ValueError(f"session {start:%H:%M}-{end:%H:%M} ends before it starts")
            if start < previous_end:
                raise ValueError(f"session {start:%H:%M}-{end:%H:%M} overlaps the one before")
            previous_end = end
        return sessions

    @classmethod
    def parse(cls, spans: list[str]) -> "OfficeHours":
        """From ``["07:30-11:30", "13:00-17:00"]``."""
        sessions = []
        for span in spans:
            start, sep, end = str(span).partition("-")
            if not sep:
                raise ValueError(f"office hours {span!r}: expected HH:MM-HH:MM")
            sessions.append((time.fromisoformat(start.strip()), time.fromisoformat(end.strip())))
        return cls(sessions=tuple(sessions))

    @property
    def opens(self) -> time:
        return self.sessions[0][0]

    @property
    def closes(self) -> time:
        return self.sessions[-1][1]

    @property
    def per_day(self) -> timedelta:
        return sum((_span(s, e) for s, e in self.sessions), timedelta())

    def label(self) -> str:
        return ",".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in self.sessions)


DEFAULT_OFFICE_HOURS = OfficeHours()


class _DatedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: date
    reason: str = ""


class _OverrideFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    office_hours: list[str] | None = None
    closures: list[_DatedEntry] = []
    working_days: list[_DatedEntry] = []

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not value or any(c.isspace() or c in "+@" for c in value):
            raise ValueError(f"must be a non-empty name without spaces, '+' or '@', got {value!r}")
        return value


class CalendarOverride(BaseModel):
    """A province's additions to the national calendar."""

    model_config = ConfigDict(frozen=True)

    name: str
    digest: str  # sha256 of the file's bytes: two files with one name still get two versions
    closures: dict[date, str] = {}
    working_days: dict[date, str] = {}
    office_hours: OfficeHours | None = None


class _TextDatesLoader(yaml.SafeLoader):
    """YAML loader that leaves dates as text, so a bad date is reported by the validator, not by PyYAML."""


_TextDatesLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load_override(path: str | Path) -> CalendarOverride:
    """Read and validate a provincial override file (YAML)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        document = yaml.load(raw, Loader=_TextDatesLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise CalendarError(f"{path}: not valid YAML: {exc}") from exc
    try:
        parsed = _OverrideFile.model_validate(document if document is not None else {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise CalendarError(f"{path}: {problems}") from None
    hours = _office_hours(parsed.office_hours, path) if parsed.office_hours else None
    closures = {e.date: e.reason for e in parsed.closures}
    working = {e.date: e.reason for e in parsed.working_days}
    both = sorted(set(closures) & set(working))
    if both:
        raise CalendarError(f"{path}: {', '.join(map(str, both))} listed both as closure and as working day")
    return CalendarOverride(name=parsed.name, digest=hashlib.sha256(raw).hexdigest(),
                            closures=closures, working_days=working, office_hours=hours)


def _office_hours(spans: list[str], path: Path) -> OfficeHours:
    try:
        return OfficeHours.parse(spans)
    except ValidationError as exc:
        raise CalendarError(f"{path}: office_hours: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    except ValueError as exc:
        raise CalendarError(f"{path}: office_hours: {exc}") from None


@lru_cache(maxsize=64)
def _national_year(year: int) -> tuple[dict[date, str], frozenset[date]]:
    """The package's holidays and make-up Saturdays of one year."""
    # A make-up day can be declared with the next year's data (27 Dec 2014 was), so load both years.
    days = holidays.country_holidays("VN", years=(year, year + 1), language="vi")
    closed = {d: name for d, name in days.items() if d.year == year}
    make_up = frozenset(d for d in days.weekend_workdays if d.year == year)
    return closed, make_up


class WorkCalendar:
    """Working days and working hours in Asia/Ho_Chi_Minh."""

    def __init__(self, override: CalendarOverride | None = None, *, office_hours: OfficeHours | None = None,
                 tz: tzinfo = VN_TZ) -> None:
        self.override = override
        self.office_hours = office_hours or (override.office_hours if override else None) or DEFAULT_OFFICE_HOURS
        self.tz = tz
        self.version = self._version(office_hours)
        # The calendar never changes once built, and the SLA clock asks about the same few
        # weeks over and over: remember each day's answer.
        self._closures: dict[date, str | None] = {}
        self._sessions: dict[date, tuple[tuple[datetime, datetime], ...]] = {}

    def _version(self, explicit_hours: OfficeHours | None) -> str:
        version = f"holidays-{holidays.__version__}"
        if self.override is not None:
            version += f"+override:{self.override.name}@{self.override.digest[:12]}"
        if explicit_hours is not None and explicit_hours != DEFAULT_OFFICE_HOURS:
            version += f"+hours:{explicit_hours.label()}"
        return version

    # --- days -------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        return self.closure_reason(day) is None

    def closure_reason(self, day: date) -> str | None:
        """Why ``day`` is not a working day, or None if it is one."""
        try:
            return self._closures[day]
        except KeyError:
            reason = self._closures[day] = self._closure_reason(day)
            return reason

    def _closure_reason(self, day: date) -> str | None:
        if self.override is not None:
            if day in self.override.working_days:
                return None
            if day in self.override.closures:
                return f"closed by {self.override.name}: {self.override.closures[day] or 'closure'}"
        closed, make_up = _national_year(day.year)
        if day in closed:
            return closed[day]
        if day.weekday() >= 5 and day not in make_up:
            return "weekend"
        return None

    def next_working_day(self, day: date, *, include_today: bool = False) -> date:
        candidate = day if include_today else day + timedelta(days=1)
        for _ in range(_SEARCH_LIMIT_DAYS):
            if self.is_working_day(candidate):
                return candidate
            candidate += timedelta(days=1)
        raise CalendarError(f"no working day within {_SEARCH_LIMIT_DAYS} days after {day} ({self.version})")

    def add_working_days(self, day: date, n: int) -> date:
        """The n-th working day after ``day`` (``day`` itself does not count); n=0 gives ``day``."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie in (start, end]; 0 when end <= start."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    # --- instants ---------------------------------------------------------------------

    def local(self, at: datetime) -> datetime:
        """``at`` in the calendar's zone; a naive time is taken as already local."""
        return at.replace(tzinfo=self.tz) if at.tzinfo is None else at.astimezone(self.tz)

    def local_date(self, at: datetime) -> date:
        return self.local(at).date()

    def at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.tz)

    def opens_at(self, day: date) -> datetime:
        return self.at(day, self.office_hours.opens)

    def closes_at(self, day: date) -> datetime:
        return self.at(day, self.office_hours.closes)

    def sessions(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The office sessions of ``day`` as instants; empty on a non-working day."""
        cached = self._sessions.get(day)
        if cached is None:
            cached = () if not self.is_working_day(day) else tuple(
                (self.at(day, s), self.at(day, e)) for s, e in self.office_hours.sessions)
            self._sessions[day] = cached
        return cached

    def clock_start(self, at: datetime) -> datetime:
        """The first working instant at or after ``at`` (office hours of a working day)."""
        return self.add_working_time(at, timedelta())

    def add_working_time(self, at: datetime, amount: timedelta) -> datetime:
        """The instant when ``amount`` of working time has passed after ``at``."""
        if amount < timedelta():
            raise ValueError(f"amount must be >= 0, got {amount}")
        cursor, remaining = self.local(at), amount
        for _ in range(_SEARCH_LIMIT_DAYS):
            for start, end in self.sessions(cursor.date()):
                begin = max(start, cursor)
                if begin >= end:
                    continue
                if remaining <= end - begin:
                    return begin + remaining
                remaining -= end - begin
            cursor = self.at(cursor.date() + timedelta(days=1), time.min)
        raise CalendarError(f"no working time within {_SEARCH_LIMIT_DAYS} days after {at} ({self.version})")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time inside [start, end]; zero when end <= start."""
        start, end = self.local(start), self.local(end)
        total, day = timedelta(), start.date()
        while day <= end.date():
            for s, e in self.sessions(day):
                overlap = min(e, end) - max(s, start)
                if overlap > timedelta():
                    total += overlap
            day += timedelta(days=1)
        return total


def _span(start: time, end: time) -> timedelta:
    return datetime.combine(date.min, end) - datetime.combine(date.min, start)


def load_calendar(override_path: str | Path | None = None, *,
                  office_hours: OfficeHours | None = None) -> WorkCalendar:
    """The national calendar, plus a provincial override file when given."""
    override = load_override(override_path) if override_path is not None else None
    return WorkCalendar(override, office_hours=office_hours)


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    return WorkCalendar()
