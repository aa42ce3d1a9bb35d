"""The procedure catalogue: each procedure's legal processing time, as data a province can replace.

The province's published procedure list is the authority on time limits, so
the rules live in a CSV file (``onestop/data/procedures.csv`` by default), not
in code. Columns are documented in docs/domain.md. A procedure may have several
versions; a dossier is judged by the version in force on the day it was
accepted (``Catalogue.get(code, at=accepted_at)``).

A bad file fails at load time with the file, the line and the problem, so a
province finds its typo before the pipeline starts.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import date, datetime, time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from onestop import csvfile
from onestop.workcal import VN_TZ

LOCAL_CODE_PREFIX = "LOCAL-"  # codes a province invents where no national code exists
COLUMNS = (
    "code", "name", "field", "legal_time", "time_unit", "cutoff", "financial_wait_pauses",
    "exception_time", "exception_unit", "exception_note", "version", "valid_from", "note",
)
REQUIRED_COLUMNS = ("code", "name", "field", "legal_time", "time_unit", "financial_wait_pauses", "version")


class TimeUnit(str, enum.Enum):
    """How a procedure's legal time is counted."""

    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"
    HOURS = "hours"  # working hours; one working day is 8 of them
    SAME_DAY = "same_day"  # done on the day of acceptance; after the cut-off, the next working day


class Procedure(BaseModel):
    """One version of one procedure's time rule."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    code: str
    name: str
    field: str  # lĩnh vực, e.g. Hộ tịch
    legal_time: int
    time_unit: TimeUnit
    cutoff: time | None = None  # acceptances after this local time count from the next working day
    financial_wait_pauses: bool  # the procedure excludes the financial-obligation wait from its time limit
    exception_time: int | None = None  # the legal ceiling in a stated special case (verification, bulk, ...)
    exception_unit: TimeUnit | None = None
    exception_note: str = ""
    version: str
    valid_from: date = date(1970, 1, 1)
    note: str = ""  # "unsettled: ..." marks an assumed time limit

    @field_validator("code", "name", "field", "version")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("code")
    @classmethod
    def _no_spaces_in_code(cls, value: str) -> str:
        if any(c.isspace() for c in value):
            raise ValueError(f"must not contain spaces, got {value!r}")
        return value

    @model_validator(mode="after")
    def _coherent_time(self) -> "Procedure":
        if self.time_unit is TimeUnit.SAME_DAY and self.legal_time != 0:
            raise ValueError(f"legal_time must be 0 for same_day procedures, got {self.legal_time}")
        if self.time_unit is not TimeUnit.SAME_DAY and self.legal_time < 1:
            raise ValueError(f"legal_time must be >= 1 for {self.time_unit.value}, got {self.legal_time}")
        if (self.exception_time is None) != (self.exception_unit is None):
            raise ValueError("exception_time and exception_unit must be given together")
        if self.exception_time is not None and self.exception_time < 1:
            raise ValueError(f"exception_time must be >= 1, got {self.exception_time}")
        return self

    @property
    def is_local_code(self) -> bool:
        return self.code.startswith(LOCAL_CODE_PREFIX)

    @property
    def is_unsettled(self) -> bool:
        return self.note.lower().startswith("unsettled")


class CatalogueError(ValueError):
    """An invalid catalogue file. The message names the file, the line and the problem."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


class UnknownProcedure(KeyError):
    """No procedure with this code in the catalogue."""


class Catalogue:
    """Procedures by code, each with its versions ordered by ``valid_from``."""

    def __init__(self, procedures: list[Procedure], *, source: str, digest: str) -> None:
        self.source = source
        self.version = f"{Path(source).name}@{digest[:12]}"  # which catalogue judged a dossier
        by_code: dict[str, list[Procedure]] = {}
        for procedure in procedures:
            by_code.setdefault(procedure.code, []).append(procedure)
        self._by_code = {code: sorted(vs, key=lambda p: p.valid_from) for code, vs in by_code.items()}

    def find(self, code: str, at: date | datetime | None = None) -> Procedure | None:
        """The version in force on ``at`` (a local date), else the latest version.

        Before a procedure's first ``valid_from`` the earliest version is used: the
        catalogue knows no older rule, and history imported from before the file
        existed must still be judged.
        """
        versions = self._by_code.get(code)
        if not versions:
            return None
        if at is None:
            return versions[-1]
        # The rule in force is decided by the local (Vietnam) date: 18:00 UTC on 30 June is 1 July.
        day = (at.astimezone(VN_TZ) if at.tzinfo else at).date() if isinstance(at, datetime) else at
        in_force = [p for p in versions if p.valid_from <= day]
        return in_force[-1] if in_force else versions[0]

    def get(self, code: str, at: date | datetime | None = None) -> Procedure:
        procedure = self.find(code, at)
        if procedure is None:
            raise UnknownProcedure(f"procedure {code!r} is not in catalogue {self.source}")
        return procedure

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Procedure]:
        return (p for versions in self._by_code.values() for p in versions)

    def __len__(self) -> int:
        return len(self._by_code)

    def codes(self) -> list[str]:
        return sorted(self._by_code)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load and validate a catalogue file; ``None`` loads the packaged one."""
    if path is None:
        resource = resources.files("onestop") / "data" / "procedures.csv"
        return _parse(resource.read_bytes(), "onestop/data/procedures.csv")
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogueError(str(path), None, f"cannot read the file: {exc.strerror or exc}") from exc
    return _parse(raw, str(path))


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    return load_catalogue()


def _parse(raw: bytes, source: str) -> Catalogue:
    procedures: list[Procedure] = []
    seen: dict[tuple[str, date], int] = {}
    for line, values in csvfile.rows(raw, source, required=REQUIRED_COLUMNS, known=COLUMNS, error=CatalogueError):
        procedure = _procedure(values, source, line)
        key = (procedure.code, procedure.valid_from)
        if key in seen:
            raise CatalogueError(source, line, f"procedure {procedure.code} valid from "
                                 f"{procedure.valid_from} is already defined on line {seen[key]}")
        seen[key] = line
        procedures.append(procedure)
    if not procedures:
        raise CatalogueError(source, None, "no procedures in the file")
    return Catalogue(procedures, source=source, digest=hashlib.sha256(raw).hexdigest())


def _procedure(values: dict[str, str], source: str, line: int) -> Procedure:
    # Empty cells mean "not given", so optional columns fall back to their defaults.
    try:
        return Procedure.model_validate(values)
    except ValidationError as exc:
        raise CatalogueError(source, line, _describe(exc, values)) from None


def _describe(exc: ValidationError, values: dict) -> str:
    problems = []
    for error in exc.errors():
        column = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if column:
            problems.append(f"column {column!r} ({values.get(column, '')!r}): {message}")
        else:
            problems.append(message)
    code = values.get("code")
    prefix = f"procedure {code}: " if code else ""
    return prefix + "; ".join(problems)
