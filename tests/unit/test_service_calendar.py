"""The service calendar: when a commune's counter is open, beside (never instead of) the legal calendar.

Dates are checked against the published calendar by hand: Sat 7 Nov 2026 and Sun 8 Nov 2026
are days off; Thu 30 Apr 2026 is Reunification Day; Sat 22 Aug 2026 is a make-up working day.
"""

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.catalogue import default_catalogue
from onestop.servicecal import DayKind, ServiceFileError, default_service_calendar, is_counter_open, \
    load_service_calendar
from onestop.sla import legal_due
from onestop.workcal import VN_TZ, WorkCalendar

DONG_LOC, KY_VAN, SONG_TRI, THAN_UYEN = "18484", "18787", "18754", "03595"
HEADER = "commune_code,kind,date,weekdays,valid_from,valid_until,hours,procedures,note\n"
ROWS = f"""\
*,hours,,,,,07:30-11:30 13:00-17:00,,
{SONG_TRI},hours,,,2026-01-01,,07:00-11:30 13:30-17:30,,longer hours
{DONG_LOC},weekend_service,2026-11-07,,,,07:30-11:30,,Ngày nghỉ vì Nhân dân
{DONG_LOC},no_appointment,,thursday,2025-07-01,,,2.000815;1.001193,Ngày thứ Năm không phiếu hẹn
{KY_VAN},village_service,,saturday,2025-07-01,,07:30-11:30,,ngày thứ Bảy về thôn
{SONG_TRI},closure,2026-11-12,,,,,,mất điện
{THAN_UYEN},weekend_service,,sunday,2026-11-01,2026-11-30,08:00-11:00,,
"""
LEGAL = WorkCalendar()


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=VN_TZ)


@pytest.fixture(scope="module")
def cal(tmp_path_factory):
    path = tmp_path_factory.mktemp("svc") / "ht.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8")
    return load_service_calendar(path, known_procedures=default_catalogue().codes())


def test_a_declared_saturday_service_day_is_open_for_the_counter_and_still_not_a_legal_working_day(cal):
    saturday = date(2026, 11, 7)
    assert saturday.weekday() == 5
    assert cal.is_counter_open(DONG_LOC, local(saturday, 9))
    assert cal.day(DONG_LOC, saturday).kind is DayKind.WEEKEND_SERVICE
    assert not LEGAL.is_working_day(saturday)
    assert not cal.day(DONG_LOC, saturday).legal_working_day
    # The legal clock ignores the service day: a same-day birth registration accepted on that
    # Saturday is due on Monday 9 Nov 2026 at 17:00, as for any dossier accepted on a day off.
    due = legal_due(local(saturday, 9), default_catalogue().get("1.001193"), LEGAL).due_at
    assert due == local(date(2026, 11, 9), 17)


@pytest.mark.parametrize(("commune", "at", "open_", "why"), [
    (DONG_LOC, local(date(2026, 11, 7), 7, 29), False, "weekend service opens at 07:30"),
    (DONG_LOC, local(date(2026, 11, 7), 11, 30), False, "weekend service ends at 11:30"),
    (DONG_LOC, local(date(2026, 11, 7), 14), False, "only the morning was declared"),
    (DONG_LOC, local(date(2026, 11, 8), 9), False, "Sunday: nothing declared"),
    (DONG_LOC, local(date(2026, 11, 14), 9), False, "the next Saturday was not declared"),
    (DONG_LOC, local(date(2026, 11, 9), 7, 30), True, "Monday, regular hours"),
    (DONG_LOC, local(date(2026, 11, 9), 12, 0), False, "lunch break"),
    (DONG_LOC, local(date(2026, 11, 9), 16, 59), True, "last minute of the day"),
    (DONG_LOC, local(date(2026, 11, 9), 17, 0), False, "closed at 17:00"),
    (SONG_TRI, local(date(2026, 11, 9), 7, 0), True, "its own hours start at 07:00"),
    (SONG_TRI, local(date(2026, 11, 9), 17, 15), True, "and end at 17:30"),
    (SONG_TRI, local(date(2026, 11, 9), 13, 15), False, "its lunch break lasts until 13:30"),
    (SONG_TRI, local(date(2025, 11, 10), 7, 0), False, "before its own hours were in force"),
    (SONG_TRI, local(date(2026, 11, 12), 9), False, "declared closure on a working day"),
    (KY_VAN, local(date(2026, 11, 7), 9), False, "village day: the officers are in the villages"),
    (THAN_UYEN, local(date(2026, 11, 8), 9), True, "every Sunday of November 2026"),
    (THAN_UYEN, local(date(2026, 12, 6), 9), False, "but not in December"),
    (DONG_LOC, local(date(2026, 8, 22), 9), True, "make-up Saturday: a legal working day"),
    (DONG_LOC, local(date(2026, 9, 2), 9), False, "National Day"),
    (DONG_LOC, local(date(2026, 11, 9), 0, 30), False, "night"),
])
def test_counter_hours(cal, commune, at, open_, why):
    assert cal.is_counter_open(commune, at) is open_, why


def test_an_instant_given_in_utc_is_judged_in_vietnam():
    # 01:00 UTC is 08:00 in Hà Tĩnh on a Monday.
    from datetime import timezone
    assert is_counter_open(DONG_LOC, datetime(2026, 11, 9, 1, 0, tzinfo=timezone.utc))
    assert not is_counter_open(DONG_LOC, datetime(2026, 11, 9, 11, 0, tzinfo=timezone.utc))  # 18:00


@pytest.mark.parametrize(("commune", "day", "kind"), [
    (DONG_LOC, date(2026, 11, 7), DayKind.WEEKEND_SERVICE),
    (DONG_LOC, date(2026, 11, 8), DayKind.DAY_OFF),
    (KY_VAN, date(2026, 11, 7), DayKind.VILLAGE_SERVICE),
    (KY_VAN, date(2026, 11, 9), DayKind.REGULAR),
    (SONG_TRI, date(2026, 11, 12), DayKind.CLOSED),
    (SONG_TRI, date(2026, 8, 22), DayKind.REGULAR),
])
def test_kind_of_day(cal, commune, day, kind):
    assert cal.day(commune, day).kind is kind


def test_village_sessions_receive_people_but_the_counter_stays_closed(cal):
    at = local(date(2026, 11, 7), 8)
    assert cal.is_receiving(KY_VAN, at) and not cal.is_counter_open(KY_VAN, at)
    assert not cal.is_receiving(KY_VAN, local(date(2026, 11, 7), 13))


@pytest.mark.parametrize(("day", "listed"), [
    (date(2026, 11, 5), {"2.000815", "1.001193"}),  # a Thursday
    (date(2026, 11, 6), set()),  # Friday
    (date(2026, 4, 30), set()),  # Thursday, but Reunification Day: the counter is closed
    (date(2025, 6, 26), set()),  # a Thursday before the practice began
])
def test_no_appointment_days(cal, day, listed):
    assert cal.day(DONG_LOC, day).no_appointment == listed


def test_a_commune_without_declarations_follows_the_legal_office_hours():
    cal = default_service_calendar()
    assert cal.is_counter_open("18073", local(date(2026, 11, 9), 8))
    assert not cal.is_counter_open("18073", local(date(2026, 11, 7), 8))


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)))
def test_undeclared_counter_is_open_exactly_in_legal_office_hours(naive):
    at = naive.replace(tzinfo=VN_TZ)
    in_hours = any(s <= at < e for s, e in LEGAL.sessions(at.date()))
    assert is_counter_open("18100", at) is in_hours


def test_the_packaged_file_declares_the_reported_practices():
    cal = default_service_calendar()
    assert cal.day(DONG_LOC, date(2026, 11, 5)).is_no_appointment_day  # Thursday
    assert cal.day(KY_VAN, date(2026, 11, 7)).kind is DayKind.VILLAGE_SERVICE  # Saturday
    assert cal.version.startswith("service-calendar.csv@") and cal.version.endswith(LEGAL.version)


def test_version_names_the_file_content(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(HEADER + ROWS, encoding="utf-8")
    b.write_text(HEADER + ROWS.replace("2026-11-07", "2026-11-08"), encoding="utf-8")
    va, vb = load_service_calendar(a).version, load_service_calendar(b).version
    assert va != vb and va.split("@")[0] == "a.csv"


@pytest.mark.parametrize(("body", "line", "problem"), [
    ("1848,hours,,,,,07:30-11:30,,", 2, "5-digit commune code"),
    ("99999,closure,2026-11-12,,,,,,", 2, "no commune with code 99999"),
    (f"{DONG_LOC},holiday,2026-11-12,,,,,,", 2, "'kind'"),
    (f"{DONG_LOC},closure,2026-13-12,,,,,,", 2, "'date'"),
    (f"{DONG_LOC},weekend_service,,friday,,,,,", 2, "saturday or sunday"),
    (f"{DONG_LOC},weekend_service,,funday,,,,,", 2, "unknown weekday 'funday'"),
    (f"{DONG_LOC},weekend_service,2026-11-07,saturday,,,,,", 2, "either a date or weekdays"),
    (f"{DONG_LOC},village_service,,,,,07:30-11:30,,", 2, "needs a date or weekdays"),
    (f"{DONG_LOC},no_appointment,,thursday,,,,,", 2, "needs the procedures"),
    (f"{DONG_LOC},closure,2026-11-12,,,,07:30-11:30,,", 2, "take no hours"),
    (f"{DONG_LOC},hours,,,,,11:30-07:30,,", 2, "ends before it starts"),
    (f"{DONG_LOC},hours,,,,,07:30-11:30 11:00-17:00,,", 2, "overlaps"),
    (f"{DONG_LOC},hours,,,,,7h30,,", 2, "HH:MM-HH:MM"),
    (f"{DONG_LOC},closure,,,2026-12-01,2026-11-01,,,", 2, "is after valid_until"),
    (f"{DONG_LOC},closure,2026-11-12,,,,,,a,b", 2, "more cell(s)"),
    (f"{DONG_LOC},closure,2026-11-12,,,,,,\n{DONG_LOC},closure,2026-11-12,,,,,,", 3, "already declared on line 2"),
    (f"{DONG_LOC},weekend_service,2026-11-09,,,,,,", 2, "2026-11-09 is a legal working day"),
    (f"{DONG_LOC},no_appointment,,thursday,,,,9.999999,", 2, "not in the catalogue: 9.999999"),
])
def test_a_bad_file_names_the_file_the_line_and_the_problem(tmp_path, body, line, problem):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body + "\n", encoding="utf-8")
    with pytest.raises(ServiceFileError) as err:
        load_service_calendar(path, known_procedures=default_catalogue().codes())
    assert str(err.value).startswith(f"{path}, line {line}: "), str(err.value)
    assert problem in str(err.value)


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty file"),
    ("commune_code,kind,weekday\n", "unknown column(s): weekday"),
    ("commune_code,date\n", "missing column(s): kind"),
])
def test_a_bad_header_is_refused(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ServiceFileError) as err:
        load_service_calendar(path)
    assert problem in str(err.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ServiceFileError, match="cannot read the file"):
        load_service_calendar(tmp_path / "absent.csv")


def test_a_bom_and_blank_optional_cells_are_fine(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + f"{KY_VAN},village_service,2026-11-11,,,,,,\n").encode())
    cal = load_service_calendar(path)
    # No hours on the row: the outreach session keeps the regular hours.
    assert cal.day(KY_VAN, date(2026, 11, 11)).village == LEGAL.office_hours.sessions


def test_the_legal_calendar_is_never_changed_by_a_service_calendar(cal):
    day = date(2026, 11, 1)
    for i in range(60):
        d = day + timedelta(days=i)
        cal.day(DONG_LOC, d)
        assert LEGAL.is_working_day(d) == (d.weekday() < 5 and d != date(2026, 11, 24))


def test_declarations_written_back_as_csv_read_the_same(cal, tmp_path):
    from onestop.servicefile import service_file_text

    path = tmp_path / "again.csv"
    path.write_text(service_file_text(cal.all_declarations()), encoding="utf-8")
    again = load_service_calendar(path)
    for commune in (DONG_LOC, KY_VAN, SONG_TRI, THAN_UYEN, "18073"):
        for i in range(40):
            day = date(2026, 11, 1) + timedelta(days=i)
            assert again.day(commune, day) == cal.day(commune, day)
