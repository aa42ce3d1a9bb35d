"""The importer: one-stop export rows -> contract-v1 events, and bad rows -> dead letters with their reason."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from onestop import dlq, events
from onestop.events import Channel, DossierEvent, EventType
from onestop.fold import apply
from producers.importer import (ImportFileError, RowError, RowMapper, event_type_for, import_file, parse_time)

DATA = Path(__file__).resolve().parent.parent / "data"
CSV = DATA / "onestop-export.csv"
JSONL = DATA / "onestop-export.jsonl"
UTC = timezone.utc


class ListSink:
    def __init__(self) -> None:
        self.events: list[DossierEvent] = []
        self.dead: list[dlq.DeadLetter] = []

    def publish(self, event: DossierEvent) -> None:
        self.events.append(event)

    def dead_letter(self, record: dlq.DeadLetter) -> None:
        self.dead.append(record)


def run(path: Path, **kw) -> tuple[ListSink, object]:
    sink = ListSink()
    return sink, import_file(path, sink, **kw)


def row(**fields: str) -> dict[str, str]:
    base = {"dossier_id": "H42.18754-261102-0001", "procedure_code": "2.000815", "channel": "1",
            "commune_code": "18754"}
    return {**base, **fields}


# ---- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("20261102083000", datetime(2026, 11, 2, 1, 30, tzinfo=UTC)),  # yyyyMMddHHmmss, naive = Asia/Ho_Chi_Minh
    ("202611020830", datetime(2026, 11, 2, 1, 30, tzinfo=UTC)),
    ("20261102", datetime(2026, 11, 1, 17, 0, tzinfo=UTC)),  # a bare date is local midnight
    ("02/11/2026 08:30:15", datetime(2026, 11, 2, 1, 30, 15, tzinfo=UTC)),
    ("2/11/2026 8:30", datetime(2026, 11, 2, 1, 30, tzinfo=UTC)),
    ("02-11-2026", datetime(2026, 11, 1, 17, 0, tzinfo=UTC)),
    ("2026-11-02T08:30:00", datetime(2026, 11, 2, 1, 30, tzinfo=UTC)),
    ("2026-11-02 08:30:00", datetime(2026, 11, 2, 1, 30, tzinfo=UTC)),
    ("2026-11-02T01:30:00Z", datetime(2026, 11, 2, 1, 30, tzinfo=UTC)),
    ("2026-11-02T10:30:00+09:00", datetime(2026, 11, 2, 1, 30, tzinfo=UTC)),
])
def test_accepted_date_formats(text: str, expected: datetime) -> None:
    assert parse_time(text, "X") == expected


def test_a_bare_due_date_means_the_end_of_that_day_in_vietnam() -> None:
    assert parse_time("05/11/2026", "NgayHenTra", end_of_day=True) == datetime(2026, 11, 5, 16, 59, 59, tzinfo=UTC)
    assert parse_time("2026-11-05", "NgayHenTra", end_of_day=True) == datetime(2026, 11, 5, 16, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-13-45 08:00", "31/02/2026", "yesterday", "2026110", "20261332000000"])
def test_unreadable_dates_are_invalid_date(text: str) -> None:
    with pytest.raises(RowError) as exc:
        parse_time(text, "ThoiDiemXuLy")
    assert exc.value.code == "invalid_date" and "ThoiDiemXuLy" in exc.value.message


# ---- status -> event type ---------------------------------------------------------------------


@pytest.mark.parametrize("status, previous, expected", [
    (1, None, EventType.SUBMITTED),
    (2, 1, EventType.ACCEPTED),
    (3, None, EventType.REFUSED_AT_RECEPTION),
    (4, 2, EventType.STEP_ASSIGNED),
    (4, 4, EventType.STEP_ASSIGNED),
    (4, 5, EventType.SUPPLEMENT_RECEIVED),
    (4, 6, EventType.FINANCIAL_OBLIGATION_FULFILLED),
    (5, None, EventType.RECEPTION_SUPPLEMENT_REQUESTED),
    (5, 1, EventType.RECEPTION_SUPPLEMENT_REQUESTED),
    (5, 2, EventType.SUPPLEMENT_REQUESTED),
    (5, 4, EventType.SUPPLEMENT_REQUESTED),
    (6, 4, EventType.FINANCIAL_OBLIGATION_REQUESTED),
    (7, 4, EventType.WITHDRAWAL_REQUESTED),
    (8, 4, EventType.PROCESSING_STOPPED),
    (9, 4, EventType.RESULT_READY),
    (10, 9, EventType.RESULT_RETURNED),
])
def test_status_maps_to_event_type(status: int, previous: int | None, expected: EventType) -> None:
    assert event_type_for(status, previous) is expected


# ---- rows -> events ---------------------------------------------------------------------------


def test_an_accepted_row_becomes_an_accepted_event() -> None:
    mapper = RowMapper("importer:x.csv")
    event = mapper.map(row(status="2", accepted_at="20261102083000", due_at="20261102170000"))
    assert event.event_type is EventType.ACCEPTED and event.seq == 1
    assert event.occurred_at == datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    assert event.due_at == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert (event.commune_code, event.procedure_code, event.channel) == ("18754", "2.000815", Channel.IN_PERSON)
    assert event.source == "importer:x.csv"
    assert events.decode(events.encode(event)) == event  # a valid contract-v1 event


def test_thoidiemxuly_wins_over_the_dossier_level_date() -> None:
    event = RowMapper("s").map(row(status="2", at="20261102090000", accepted_at="20261102083000",
                                   due_at="20261103"))
    assert event.occurred_at == datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_later_rows_carry_over_procedure_channel_and_commune() -> None:
    mapper = RowMapper("s")
    mapper.map(row(status="2", at="20261102083000", due_at="20261103"))
    event = mapper.map({"dossier_id": "H42.18754-261102-0001", "status": "4", "at": "20261102090000",
                        "step": "chuyên viên"})
    assert (event.seq, event.commune_code, event.procedure_code, event.channel) == \
        (2, "18754", "2.000815", Channel.IN_PERSON)
    assert event.step == "chuyên viên"


def test_spreadsheet_mangled_commune_codes_are_zero_padded() -> None:
    event = RowMapper("s").map(row(status="2", commune_code="3595", at="20261102083000", due_at="20261103"))
    assert event.commune_code == "03595"


@pytest.mark.parametrize("fields, code, mentions", [
    ({"status": "11", "at": "20261102083000"}, "unknown_status", "TrangThaiHoSo"),
    ({"status": "x", "at": "20261102083000"}, "unknown_status", "TrangThaiHoSo"),
    ({"status": "", "at": "20261102083000"}, "missing_field", "TrangThaiHoSo"),
    ({"dossier_id": " ", "status": "4", "at": "20261102083000"}, "missing_field", "MaHoSo"),
    ({"status": "4"}, "missing_field", "ThoiDiemXuLy"),
    ({"status": "2", "at": "20261102083000"}, "missing_field", "NgayHenTra"),
    ({"status": "4", "at": "20261102083000", "channel": "7"}, "invalid_field", "KenhThucHien"),
    ({"status": "4", "at": "20261102083000", "commune_code": "1875A"}, "invalid_field", "MaDonVi"),
    ({"status": "4", "at": "20261102083000", "commune_code": "187540"}, "invalid_field", "MaDonVi"),
    ({"status": "4", "at": "20261102083000", "commune_code": "99999"}, "unknown_commune", "MaDonVi"),
    ({"status": "4", "at": "20261102083000", "handling_commune_code": "00001"}, "unknown_commune", "MaDonViXuLy"),
    ({"status": "4", "at": "20261102083000", "procedure_code": ""}, "missing_field", "MaTTHC"),
    ({"status": "4", "at": "tomorrow"}, "invalid_date", "ThoiDiemXuLy"),
])
def test_bad_rows_are_rejected_with_a_reason_naming_the_column(fields, code, mentions) -> None:
    mapper = RowMapper("s")
    with pytest.raises(RowError) as exc:
        mapper.map(row(**fields))
    assert exc.value.code == code
    assert mentions in exc.value.message
    assert mapper.dossiers == {}  # a rejected row changes nothing


def test_unknown_communes_can_be_allowed() -> None:
    event = RowMapper("s", check_communes=False).map(row(status="4", at="20261102083000", commune_code="99999"))
    assert event.commune_code == "99999"


def test_a_rejected_row_does_not_consume_a_seq() -> None:
    mapper = RowMapper("s")
    mapper.map(row(status="2", at="20261102083000", due_at="20261103"))
    with pytest.raises(RowError):
        mapper.map(row(status="4", at="not a date"))
    assert mapper.map(row(status="4", at="20261102090000")).seq == 2


def test_the_same_record_twice_in_a_file_is_one_event() -> None:
    mapper = RowMapper("s")
    first = mapper.map(row(status="2", at="20261102083000", due_at="20261103"))
    assert mapper.map(row(status="2", at="2026-11-02T08:30:00", due_at="20261103")) is None  # same moment
    assert first.seq == 1 and mapper.dossiers[first.dossier_id].seq == 1


# ---- the sample files -------------------------------------------------------------------------


def test_the_csv_sample() -> None:
    sink, summary = run(CSV)
    assert (summary.rows, summary.events, summary.duplicates) == (17, 10, 1)
    assert summary.rejected == Counter(missing_field=2, unknown_status=1, invalid_date=1, unknown_commune=1,
                                       malformed_row=1)
    by_dossier: dict[str, list[tuple[int, str]]] = {}
    for e in sink.events:
        by_dossier.setdefault(e.dossier_id, []).append((e.seq, e.event_type.value))
    assert by_dossier == {
        "H42.18754-261102-0001": [(1, "accepted"), (2, "step_assigned"), (3, "result_ready"), (4, "result_returned")],
        "H12.03595-261102-0001": [(1, "submitted"), (2, "accepted"), (3, "step_assigned"),
                                  (4, "supplement_requested"), (5, "supplement_received")],
        "H42.18754-261102-0002": [(1, "refused_at_reception")],
    }


def test_the_jsonl_sample() -> None:
    sink, summary = run(JSONL)
    assert (summary.rows, summary.events, summary.duplicates) == (12, 6, 1)
    assert summary.rejected == Counter(invalid_field=2, malformed_json=1, not_an_object=1, missing_field=1)
    land = [e for e in sink.events if e.dossier_id == "H42.18073-261103-0002"]
    assert [e.event_type.value for e in land] == ["accepted", "financial_obligation_requested",
                                                  "financial_obligation_fulfilled"]
    assert (land[0].commune_code, land[0].handling_commune_code) == ("18100", "18073")


@pytest.mark.parametrize("path", [CSV, JSONL])
def test_sample_events_fold_without_rejections(path: Path) -> None:
    sink, _ = run(path)
    states: dict[str, object] = {}
    for e in sink.events:
        outcome = apply(states.get(e.dossier_id), e)
        assert not outcome.rejected, outcome.rejected
        states[e.dossier_id] = outcome.state


def test_dead_letters_carry_the_row_number_reason_and_original_bytes() -> None:
    sink, _ = run(CSV)
    lines = CSV.read_bytes().splitlines()
    by_source = {d.source: d for d in sink.dead}
    status = by_source["importer:onestop-export.csv:13"]
    assert status.reason_code == "unknown_status" and status.original == lines[12]
    assert status.dossier_id == "H42.18754-261102-0003"
    assert "row 13" in status.message and "TrangThaiHoSo" in status.message
    assert by_source["importer:onestop-export.csv:15"].dossier_id is None  # the row had no MaHoSo
    jsonl_sink, _ = run(JSONL)
    broken = next(d for d in jsonl_sink.dead if d.reason_code == "malformed_json")
    assert broken.source == "importer:onestop-export.jsonl:8"
    assert broken.original == JSONL.read_bytes().splitlines()[7]


@pytest.mark.parametrize("path", [CSV, JSONL])
def test_reimporting_gives_identical_events(path: Path) -> None:
    first, _ = run(path)
    second, _ = run(path)
    assert [events.encode(e) for e in first.events] == [events.encode(e) for e in second.events]
    assert len({e.event_id for e in first.events}) == len(first.events)


def test_semicolon_csv_with_a_bom_and_lower_case_headers(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("\ufeffmahoso;mattHC;trangthaihoso;kenhthuchien;madonvi;ngaytiepnhan;ngayhentra\r\n"
                     "H42.18754-1;2.000815;2;1;18754;20261102083000;20261102170000\r\n".encode())
    sink, summary = run(path)
    assert summary.events == 1 and not summary.rejected
    assert sink.events[0].dossier_id == "H42.18754-1"


def test_a_quoted_multi_line_cell_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text('MaHoSo,MaTTHC,TrangThaiHoSo,KenhThucHien,MaDonVi,ThoiDiemXuLy,NoiDungXuLy\n'
                    'D1,2.000815,3,1,18754,20261102083000,"không thuộc\nthẩm quyền"\n'
                    'D2,2.000815,9,1,18754,bad,\n', encoding="utf-8")
    sink, summary = run(path)
    assert sink.events[0].reason == "không thuộc\nthẩm quyền"
    assert [d.source for d in sink.dead] == [f"importer:{path.name}:3"]


def test_a_file_without_the_required_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("MaHoSo,Status\nD1,2\n")
    with pytest.raises(ImportFileError, match="TrangThaiHoSo"):
        run(path)


def test_an_unknown_extension_needs_a_format(tmp_path: Path) -> None:
    path = tmp_path / "export.dat"
    path.write_bytes(CSV.read_bytes())
    with pytest.raises(ImportFileError, match="--format"):
        run(path)
    assert run(path, fmt="csv")[1].events == 10
