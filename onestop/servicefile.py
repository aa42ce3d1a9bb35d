"""The service-calendar file: what each commune's one-stop counter declares, as CSV a province edits.

One row is one declaration (columns in docs/domain.md, "Service calendar"):

- ``hours``: the counter's regular hours on legal working days (``*`` = every commune);
- ``weekend_service``: a day off on which the counter opens anyway ("Ngày nghỉ vì Nhân dân");
- ``village_service``: officers receive dossiers in the villages ("ngày thứ Bảy về thôn");
- ``no_appointment``: weekdays on which listed procedures are resolved on the spot, with no
  appointment slip ("Ngày thứ Năm không phiếu hẹn");
- ``closure``: the counter is closed although the legal calendar says it works.

A declaration names one ``date``, or ``weekdays`` between ``valid_from`` and ``valid_until``
(a ``closure`` may also be a plain date range). A bad file fails at load time with the file,
the line and the problem, like the procedure catalogue.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import datetime as dt
from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from onestop import csvfile
from onestop.communes import commune

COLUMNS = ("commune_code", "kind", "date", "weekdays", "valid_from", "valid_until", "hours", "procedures", "note")
REQUIRED_COLUMNS = ("commune_code", "kind")
ALL_COMMUNES = "*"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FAR_PAST, FAR_FUTURE = dt.date(1970, 1, 1), dt.date(9999, 12, 31)


class Kind(str, enum.Enum):
    HOURS = "hours"
    WEEKEND_SERVICE = "weekend_service"
    VILLAGE_SERVICE = "village_service"
    NO_APPOINTMENT = "no_appointment"
    CLOSURE = "closure"


class ServiceFileError(ValueError):
    """An invalid service-calendar file. The message names the file, the line and the problem."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


Span = tuple[time, time]


def parse_hours(text: str) -> tuple[Span, ...]:
    """``"07:30-11:30 13:00-17:00"`` (spaces or ``;`` between sessions) as ordered, non-overlapping spans."""
    spans: list[Span] = []
    for part in text.replace(";", " ").split():
        start, sep, end = part.partition("-")
        if not sep:
            raise ValueError(f"session {part!r}: expected HH:MM-HH:MM")
        try:
            span = (time.fromisoformat(start), time.fromisoformat(end))
        except ValueError:
            raise ValueError(f"session {part!r}: expected HH:MM-HH:MM") from None
        if not span[0] < span[1]:
            raise ValueError(f"session {part} ends before it starts")
        if spans and span[0] < spans[-1][1]:
            raise ValueError(f"session {part} overlaps the one before")
        spans.append(span)
    return tuple(spans)


class Declaration(BaseModel):
    """One row of the file, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    commune_code: str
    kind: Kind
    date: dt.date | None = None
    weekdays: frozenset[int] = frozenset()  # 0 = Monday, as date.weekday()
    valid_from: dt.date = FAR_PAST
    valid_until: dt.date = FAR_FUTURE
    hours: tuple[Span, ...] = ()
    procedures: frozenset[str] = frozenset()
    note: str = ""
    line: int = 0

    @field_validator("commune_code")
    @classmethod
    def _known_commune(cls, value: str) -> str:
        if value == ALL_COMMUNES:
            return value
        if len(value) != 5 or not value.isascii() or not value.isdigit():
            raise ValueError(f"must be a 5-digit commune code (keep the leading zero) or '*', got {value!r}")
        if commune(value) is None:
            raise ValueError(f"no commune with code {value} in vietnam-provinces")
        return value

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekday_names(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        days = set()
        for name in value.replace(",", ";").split(";"):
            name = name.strip().lower()
            if name not in WEEKDAYS:
                raise ValueError(f"unknown weekday {name!r}; expected {', '.join(WEEKDAYS)}")
            days.add(WEEKDAYS.index(name))
        return frozenset(days)

    @field_validator("hours", mode="before")
    @classmethod
    def _sessions(cls, value: object) -> object:
        return parse_hours(value) if isinstance(value, str) else value

    @field_validator("procedures", mode="before")
    @classmethod
    def _codes(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(code.strip() for code in value.split(";") if code.strip())
        return value

    @model_validator(mode="after")
    def _coherent(self) -> "Declaration":
        if self.valid_from > self.valid_until:
            raise ValueError(f"valid_from {self.valid_from} is after valid_until {self.valid_until}")
        dated, weekly = self.date is not None, bool(self.weekdays)
        if self.kind is Kind.HOURS:
            if dated or weekly:
                raise ValueError("hours apply to every legal working day: give valid_from/valid_until, not a date or weekdays")
            if not self.hours:
                raise ValueError("hours needs the sessions, e.g. 07:30-11:30 13:00-17:00")
        elif dated and weekly:
            raise ValueError("give either a date or weekdays, not both")
        elif not dated and not weekly and not (self.kind is Kind.CLOSURE and self._ranged()):
            raise ValueError(f"{self.kind.value} needs a date or weekdays"
                             + (" (or a valid_from..valid_until range)" if self.kind is Kind.CLOSURE else ""))
        if self.kind is Kind.NO_APPOINTMENT and not self.procedures:
            raise ValueError("no_appointment needs the procedures resolved on the spot (codes separated by ';')")
        if self.kind is not Kind.NO_APPOINTMENT and self.procedures:
            raise ValueError(f"procedures belong to no_appointment rows, not {self.kind.value}")
        if self.kind is Kind.WEEKEND_SERVICE and weekly and self.weekdays - {5, 6}:
            raise ValueError("weekend_service weekdays must be saturday or sunday")
        if self.kind in (Kind.NO_APPOINTMENT, Kind.CLOSURE) and self.hours:
            raise ValueError(f"{self.kind.value} rows take no hours")
        return self

    def _ranged(self) -> bool:
        return self.valid_from != FAR_PAST and self.valid_until != FAR_FUTURE

    def applies(self, day: dt.date) -> bool:
        if self.date is not None:
            return day == self.date
        if not self.valid_from <= day <= self.valid_until:
            return False
        return not self.weekdays or day.weekday() in self.weekdays


class ServiceFile(BaseModel):
    """The declarations of one file, with where they came from."""

    model_config = ConfigDict(frozen=True)

    source: str
    digest: str
    declarations: tuple[Declaration, ...]

    @property
    def version(self) -> str:
        return f"{Path(self.source).name}@{self.digest[:12]}"


def service_file_text(declarations: list[Declaration]) -> str:
    """Declarations as the CSV text ``parse_service_file`` reads (e.g. what a simulation followed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for d in declarations:
        writer.writerow([
            d.commune_code, d.kind.value, d.date.isoformat() if d.date else "",
            ";".join(WEEKDAYS[w] for w in sorted(d.weekdays)),
            d.valid_from.isoformat() if d.valid_from != FAR_PAST else "",
            d.valid_until.isoformat() if d.valid_until != FAR_FUTURE else "",
            " ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in d.hours), ";".join(sorted(d.procedures)), d.note,
        ])
    return out.getvalue()


def parse_service_file(raw: bytes, source: str) -> ServiceFile:
    found: list[Declaration] = []
    seen: dict[tuple, int] = {}
    for line, values in csvfile.rows(raw, source, required=REQUIRED_COLUMNS, known=COLUMNS, error=ServiceFileError):
        declaration = _declaration(values, source, line)
        key = (declaration.commune_code, declaration.kind, declaration.date, declaration.weekdays,
               declaration.valid_from, declaration.valid_until)
        if key in seen:
            raise ServiceFileError(source, line, f"the same {declaration.kind.value} for commune "
                                   f"{declaration.commune_code} is already declared on line {seen[key]}")
        seen[key] = line
        found.append(declaration)
    return ServiceFile(source=source, digest=hashlib.sha256(raw).hexdigest(), declarations=tuple(found))


def _declaration(values: dict[str, str], source: str, line: int) -> Declaration:
    try:
        return Declaration.model_validate({**values, "line": line})
    except ValidationError as exc:
        raise ServiceFileError(source, line, _describe(exc, values)) from None


def _describe(exc: ValidationError, values: dict) -> str:
    problems = []
    for error in exc.errors():
        column = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"column {column!r} ({values.get(column, '')!r}): {message}" if column else message)
    code = values.get("commune_code")
    return (f"commune {code}: " if code else "") + "; ".join(problems)
