"""``onestop sla``: the legal SLA clock from the command line.

``due`` answers "when does the law say this dossier is due?"; ``classify``
judges every dossier of a JSONL event file at an instant. Both print the
calendar version that decided, so an answer can be reproduced later.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Optional

import msgspec
import typer

from onestop.catalogue import Catalogue, CatalogueError, load_catalogue
from onestop.events import ContractError, decode
from onestop.fold import DossierState
from onestop.report import states_as_of
from onestop.settings import env_var, get_settings
from onestop.sla import check_receipt, classify, legal_due
from onestop.workcal import VN_TZ, CalendarError, WorkCalendar, load_calendar

app = typer.Typer(
    no_args_is_help=True,
    help="The legal SLA clock: due dates from the procedure catalogue and the working-day calendar.",
)

# The defaults come from the one settings class, so `onestop sla` and the worker read the same files.
CALENDAR_HELP = ("Provincial calendar override (YAML: extra closures and working days) "
                 f"(env {env_var('calendar_override')}). Default: the national calendar from the holidays package.")
CATALOGUE_HELP = (f"Procedure catalogue (CSV) (env {env_var('catalogue_file')}). "
                  "Default: the packaged onestop/data/procedures.csv.")
_CalendarOption = typer.Option(None, "--calendar", help=CALENDAR_HELP, exists=True, dir_okay=False)
_CatalogueOption = typer.Option(None, "--catalogue", help=CATALOGUE_HELP, exists=True, dir_okay=False)
_json = msgspec.json.Encoder()


def _parse_time(text: str, option: str) -> datetime:
    """ISO 8601; a time without an offset is local time in Asia/Ho_Chi_Minh."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time, e.g. 2025-05-02T15:04+07:00",
                                 param_hint=option) from None
    return at.replace(tzinfo=VN_TZ) if at.tzinfo is None else at


def _load(calendar: Optional[Path], catalogue: Optional[Path]) -> tuple[WorkCalendar, Catalogue]:
    settings = get_settings()
    calendar = calendar if calendar is not None else settings.calendar_override
    catalogue = catalogue if catalogue is not None else settings.catalogue_file
    try:
        return load_calendar(calendar), load_catalogue(catalogue)
    except (CalendarError, CatalogueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def due(
    procedure: str = typer.Option(..., "--procedure", "-p", help="National procedure code, e.g. 1.001193."),
    accepted_at: str = typer.Option(..., "--accepted-at", "-a",
                                    help="When the complete dossier was accepted (ISO 8601; no offset = "
                                         "Asia/Ho_Chi_Minh), e.g. 2025-05-02T15:04."),
    receipt_due_at: Optional[str] = typer.Option(None, "--receipt-due-at",
                                                 help="Also check this receipt due date (NgayHenTra) "
                                                      "against the law."),
    calendar: Optional[Path] = _CalendarOption,
    catalogue: Optional[Path] = _CatalogueOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Print the legal due date of a dossier, and the calendar version that decided it."""
    work_calendar, procedures = _load(calendar, catalogue)
    accepted = _parse_time(accepted_at, "--accepted-at")
    found = procedures.find(procedure, accepted)
    if found is None:
        typer.echo(f"error: procedure {procedure!r} is not in {procedures.source}", err=True)
        raise typer.Exit(2)
    result = legal_due(accepted, found, work_calendar)
    out = {"procedure": found.code, "name": found.name, "accepted_at": work_calendar.local(accepted),
           "due_at": work_calendar.local(result.due_at), "rule": result.rule,
           "procedure_version": result.procedure_version, "calendar_version": result.calendar_version}
    if receipt_due_at is not None:
        check = check_receipt(accepted, _parse_time(receipt_due_at, "--receipt-due-at"), found, work_calendar)
        out["receipt_check"] = check.verdict
    if as_json:
        typer.echo(_json.encode(out).decode())
        return
    for key, value in out.items():
        typer.echo(f"{key}: {value.isoformat() if isinstance(value, datetime) else value}")


def _read_events(path: Path) -> list:
    """Decode a JSONL file; bad lines are reported on stderr and skipped, never fatal."""
    events, bad = [], 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                events.append(decode(line))
            except ContractError as exc:
                bad += 1
                typer.echo(f"{path}:{number}: skipped: {exc}", err=True)
    if bad:
        typer.echo(f"{path}: {bad} line(s) skipped", err=True)
    return events


def _line(state: DossierState, at: datetime, work_calendar: WorkCalendar, procedures: Catalogue) -> dict:
    verdict = classify(state, at, calendar=work_calendar, catalogue=procedures)

    def local(t: datetime | None) -> datetime | None:  # operators read Vietnam time
        return work_calendar.local(t) if t is not None else None

    line = {"dossier_id": state.dossier_id, "status": state.status, "commune_code": state.commune_code,
            "handling_commune_code": state.handling_commune_code, "procedure_code": state.procedure_code,
            "accepted_at": local(state.accepted_at), "finished_at": local(state.finished_at),
            "original_due_at": local(state.original_due_at), "effective_due_at": local(state.due_at),
            "judged_due_at": local(verdict.judged_due_at), "paused_hours": verdict.paused.total_seconds() / 3600,
            "classification": verdict.timeliness.value if verdict.timeliness else None,
            "waiting": verdict.waiting, "reason": verdict.reason, "rejected_events": state.rejected,
            "calendar_version": verdict.calendar_version, "procedure_version": verdict.procedure_version}
    procedure = procedures.find(state.procedure_code, state.accepted_at)
    if procedure is not None and state.accepted_at is not None and state.original_due_at is not None:
        line["receipt_check"] = check_receipt(state.accepted_at, state.original_due_at, procedure,
                                              work_calendar).verdict
    return line


@app.command("classify")
def classify_command(
    events: Path = typer.Option(..., "--events", "-e", exists=True, dir_okay=False,
                                help="JSONL file of contract-v1 dossier events, one per line, any order."),
    at: Optional[str] = typer.Option(None, "--at",
                                     help="Judge as of this instant (ISO 8601; no offset = Asia/Ho_Chi_Minh). "
                                          "Events after it are ignored. Default: now."),
    calendar: Optional[Path] = _CalendarOption,
    catalogue: Optional[Path] = _CatalogueOption,
) -> None:
    """Print one JSON line per dossier: state, original and effective due dates, and classification.

    Resolved dossiers: before_due / on_due / overdue, against the receipt's date.

    Open dossiers: within_due / due_soon / overdue at --at, against the effective date.

    Dossiers never accepted: null (no clock).
    """
    work_calendar, procedures = _load(calendar, catalogue)
    instant = _parse_time(at, "--at") if at is not None else datetime.now(VN_TZ)
    states = states_as_of(_read_events(events), instant, inclusive=True)
    for dossier_id in sorted(states):
        typer.echo(_json.encode(_line(states[dossier_id], instant, work_calendar, procedures)).decode())
