"""``onestop sla due`` and ``onestop sla classify`` through typer's CliRunner."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from onestop_cli.sla import app
from onestop.events import Channel, DossierEvent, EventType, encode
from onestop.settings import get_settings

runner = CliRunner()
VN = timezone(timedelta(hours=7))


@pytest.fixture(autouse=True)
def fresh_settings():
    """The commands read their defaults from get_settings(), cached per process: start each test afresh."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_due_prints_the_legal_due_date_and_the_calendar_version():
    # Friday 13 Feb 2026, 15:04: after the cut-off, and Tết closes 16-20 Feb.
    result = runner.invoke(app, ["due", "--procedure", "1.001193", "--accepted-at", "2026-02-13T15:04"])
    assert result.exit_code == 0, result.output
    assert "due_at: 2026-02-23T17:00:00+07:00" in result.output
    assert "calendar_version: holidays-0.108" in result.output


def test_due_as_json_with_a_receipt_check():
    result = runner.invoke(app, ["due", "-p", "2.000720", "-a", "2026-11-23T09:00+07:00",
                                 "--receipt-due-at", "2026-11-30T17:00", "--json"])
    out = json.loads(result.output)
    assert out["due_at"] == "2026-11-27T17:00:00+07:00" and out["receipt_check"] == "later_than_law"
    assert out["procedure_version"] == "2025.07"


def test_due_with_a_provincial_calendar(tmp_path):
    override = tmp_path / "storm.yaml"
    override.write_text("name: storm\nclosures:\n  - {date: 2026-11-25, reason: bão}\n", encoding="utf-8")
    result = runner.invoke(app, ["due", "-p", "2.000720", "-a", "2026-11-23T09:00", "--calendar", str(override),
                                 "--json"])
    out = json.loads(result.output)
    assert out["due_at"] == "2026-11-30T17:00:00+07:00"  # 24/11 holiday, 25/11 storm: 26, 27, 30
    assert out["calendar_version"].startswith("holidays-0.108+override:storm@")


def test_due_reads_the_catalogue_from_the_environment(tmp_path):
    catalogue = tmp_path / "p.csv"
    catalogue.write_text("code,name,field,legal_time,time_unit,financial_wait_pauses,version\n"
                         "9.000001,Thử,Thử,2,hours,false,t1\n", encoding="utf-8")
    result = runner.invoke(app, ["due", "-p", "9.000001", "-a", "2025-05-05T16:00", "--json"],
                           env={"ONESTOP_CATALOGUE_FILE": str(catalogue)})
    assert json.loads(result.output)["due_at"] == "2025-05-06T08:30:00+07:00"


@pytest.mark.parametrize(("args", "message"), [
    (["due", "-p", "9.999999", "-a", "2025-05-05T09:00"], "not in"),
    (["due", "-p", "1.001193", "-a", "yesterday"], "not an ISO 8601 time"),
])
def test_due_refuses_bad_input_with_a_reason(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output


def test_a_bad_catalogue_is_reported_with_its_line(tmp_path):
    catalogue = tmp_path / "p.csv"
    catalogue.write_text("code,name,field,legal_time,time_unit,financial_wait_pauses,version\n"
                         "9.000001,Thử,Thử,2,weeks,false,t1\n", encoding="utf-8")
    result = runner.invoke(app, ["due", "-p", "9.000001", "-a", "2025-05-05T09:00", "--catalogue", str(catalogue)])
    assert result.exit_code == 2 and f"{catalogue}, line 2" in result.output


def event(dossier: str, seq: int, kind: EventType, at: datetime, **kw) -> bytes:
    return encode(DossierEvent(event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq,
                               occurred_at=at, commune_code="18754", procedure_code="2.000720",
                               channel=Channel.ONLINE, **kw))


@pytest.fixture
def events_file(tmp_path):
    monday = datetime(2025, 5, 5, 9, 0, tzinfo=VN)
    receipt = datetime(2025, 5, 8, 17, 0, tzinfo=VN)
    lines = [
        event("A", 2, EventType.RESULT_READY, monday + timedelta(days=2)),  # out of order on purpose
        event("A", 1, EventType.ACCEPTED, monday, due_at=receipt),
        event("B", 1, EventType.ACCEPTED, monday, due_at=receipt),
        event("B", 2, EventType.EXTENDED, monday + timedelta(days=2), due_at=receipt + timedelta(days=5)),
        b'{"event_type": "teleported"}',
        event("C", 1, EventType.SUBMITTED, monday),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_classify_prints_one_json_line_per_dossier(events_file):
    result = runner.invoke(app, ["classify", "--events", str(events_file), "--at", "2025-05-09T10:00"])
    assert result.exit_code == 0, result.output
    lines = {d["dossier_id"]: d for d in map(json.loads, result.stdout.splitlines())}
    assert set(lines) == {"A", "B", "C"}
    assert lines["A"]["classification"] == "before_due" and lines["A"]["status"] == 9
    assert lines["B"]["classification"] == "within_due"  # open: judged against the extension
    assert lines["B"]["original_due_at"] == "2025-05-08T17:00:00+07:00"
    assert lines["B"]["effective_due_at"] == "2025-05-13T17:00:00+07:00"
    assert lines["C"]["classification"] is None
    assert lines["A"]["calendar_version"] == "holidays-0.108" and lines["A"]["receipt_check"] == "within_law"
    assert "events.jsonl:5: skipped" in result.stderr and "unknown_event_type" in result.stderr


def test_classify_ignores_events_after_the_instant(events_file):
    result = runner.invoke(app, ["classify", "--events", str(events_file), "--at", "2025-05-06T10:00"])
    lines = {d["dossier_id"]: d for d in map(json.loads, result.stdout.splitlines())}
    assert lines["A"]["status"] == 2 and lines["A"]["classification"] == "within_due"


def test_help_texts_explain_the_commands():
    result = runner.invoke(app, ["--help"])
    assert "due" in result.output and "classify" in result.output
    due_help = runner.invoke(app, ["due", "--help"]).output
    assert "--accepted-at" in due_help and "ONESTOP_CALENDAR_OVERRIDE" in due_help
    assert "Asia/Ho_Chi_Minh" in runner.invoke(app, ["classify", "--help"]).output
