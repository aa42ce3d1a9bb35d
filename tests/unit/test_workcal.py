"""The working-day calendar, against the published 2025-2026 holiday and swap decisions.

Expected values come from the law and the calendar (Labour Code 2019 art. 112,
the government's swap announcements, the lunar calendar), never from the code.
"""

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.workcal import VN_TZ, CalendarError, OfficeHours, WorkCalendar, load_calendar, load_override

CAL = WorkCalendar()


@pytest.mark.parametrize(("day", "working", "why"), [
    # Tết Bính Ngọ: 1st day of the lunar year = Tue 17 Feb 2026; 5 days off = eve + 4 days.
    (date(2026, 2, 13), True, "Friday before Tết"),
    (date(2026, 2, 16), False, "Tết eve (29 tháng Chạp)"),
    (date(2026, 2, 17), False, "Mùng 1 Tết"),
    (date(2026, 2, 20), False, "Mùng 4 Tết"),
    (date(2026, 2, 23), True, "first Monday after Tết"),
    # 2025: Fri 2 May off, swapped with Sat 26 Apr worked.
    (date(2025, 4, 26), True, "make-up Saturday"),
    (date(2025, 4, 30), False, "Reunification Day"),
    (date(2025, 5, 1), False, "Labour Day"),
    (date(2025, 5, 2), False, "swapped day off"),
    (date(2025, 5, 3), False, "ordinary Saturday"),
    (date(2025, 4, 7), False, "Hùng Kings (10/3 lunar)"),
    (date(2025, 9, 1), False, "National Day, adjacent day"),
    (date(2025, 9, 2), False, "National Day"),
    # 2026: Mon 31 Aug off, swapped with Sat 22 Aug worked.
    (date(2026, 8, 22), True, "make-up Saturday"),
    (date(2026, 8, 31), False, "swapped day off"),
    (date(2026, 9, 1), False, "National Day, adjacent day"),
    (date(2026, 9, 2), False, "National Day"),
    (date(2026, 4, 27), False, "Hùng Kings falls on Sun 26 Apr 2026: compensatory Monday"),
    # Vietnam Cultural Day: a holiday from 2026 only.
    (date(2026, 11, 24), False, "Vietnam Cultural Day"),
    (date(2025, 11, 24), True, "not yet a holiday in 2025"),
    (date(2026, 11, 23), True, "ordinary Monday"),
])
def test_working_days_of_2025_and_2026(day, working, why):
    assert CAL.is_working_day(day) is working, why


@pytest.mark.parametrize(("start", "n", "expected"), [
    (date(2025, 4, 25), 1, date(2025, 4, 26)),  # Fri → the make-up Saturday
    (date(2025, 4, 29), 1, date(2025, 5, 5)),  # 30/4, 1/5, 2/5 off, then the weekend
    (date(2026, 2, 13), 1, date(2026, 2, 23)),  # over Tết
    (date(2026, 2, 13), 20, date(2026, 3, 20)),  # 4 full weeks after Tết
    (date(2026, 8, 28), 1, date(2026, 9, 3)),  # 31/8 swapped, 1/9 and 2/9 off
    (date(2026, 11, 23), 3, date(2026, 11, 27)),  # 24/11 off
    (date(2026, 11, 23), 0, date(2026, 11, 23)),
])
def test_add_working_days(start, n, expected):
    assert CAL.add_working_days(start, n) == expected


def test_a_non_working_day_rolls_forward_to_the_next_working_day():
    assert CAL.next_working_day(date(2026, 2, 14), include_today=True) == date(2026, 2, 23)
    assert CAL.next_working_day(date(2026, 2, 23), include_today=True) == date(2026, 2, 23)


def test_closure_reasons_name_the_holiday_or_the_weekend():
    assert CAL.closure_reason(date(2026, 11, 24)) == "Ngày Văn hóa Việt Nam"
    assert CAL.closure_reason(date(2025, 5, 3)) == "weekend"
    assert CAL.closure_reason(date(2025, 5, 5)) is None


def test_the_national_calendar_version_names_the_package():
    assert CAL.version == "holidays-0.108"


# --- working hours ------------------------------------------------------------------


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


@pytest.mark.parametrize(("start", "hours", "expected"), [
    (vn(2025, 5, 5, 10, 0), 4, vn(2025, 5, 5, 15, 30)),  # 1.5 h before lunch, 2.5 h after
    (vn(2025, 5, 5, 12, 0), 8, vn(2025, 5, 6, 11, 30)),  # lunch counts nothing
    (vn(2025, 4, 25, 16, 0), 8, vn(2025, 4, 26, 16, 0)),  # into the make-up Saturday
    (vn(2025, 4, 29, 17, 30), 1, vn(2025, 5, 5, 8, 30)),  # after hours, over the 30/4 break
    (vn(2025, 5, 5, 13, 0), 4, vn(2025, 5, 5, 17, 0)),  # exactly to closing: not next morning
])
def test_add_working_time_in_office_hours(start, hours, expected):
    assert CAL.add_working_time(start, timedelta(hours=hours)) == expected


def test_a_working_day_is_eight_working_hours():
    assert OfficeHours().per_day == timedelta(hours=8)
    assert CAL.working_time_between(vn(2025, 5, 5, 0, 0), vn(2025, 5, 5, 23, 59)) == timedelta(hours=8)


def test_times_in_utc_are_judged_in_asia_ho_chi_minh():
    # 01:00 UTC on Fri 2 May 2025 is 08:00 in Vietnam on a swapped day off.
    assert CAL.clock_start(datetime.fromisoformat("2025-05-02T01:00:00+00:00")) == vn(2025, 5, 5, 7, 30)


def test_office_hours_are_configurable():
    cal = WorkCalendar(office_hours=OfficeHours.parse(["08:00-12:00", "13:30-17:30"]))
    assert cal.add_working_time(vn(2025, 5, 5, 11, 0), timedelta(hours=2)) == vn(2025, 5, 5, 14, 30)
    assert cal.version == "holidays-0.108+hours:08:00-12:00,13:30-17:30"


# --- provincial override ------------------------------------------------------------

OVERRIDE = """\
name: ha-tinh-2027
closures:
  - date: 2027-10-14
    reason: "Bão: UBND tỉnh cho nghỉ"
working_days:
  - date: 2027-10-23
    reason: làm bù cho ngày 14/10
  - date: 2026-11-24
    reason: test that an override beats the package
"""


@pytest.fixture
def override_file(tmp_path):
    path = tmp_path / "ha-tinh.yaml"
    path.write_text(OVERRIDE, encoding="utf-8")
    return path


def test_an_override_adds_closures_and_make_up_days_the_package_lacks(override_file):
    cal = load_calendar(override_file)
    assert CAL.is_working_day(date(2027, 10, 14)) and not cal.is_working_day(date(2027, 10, 14))
    assert not CAL.is_working_day(date(2027, 10, 23)) and cal.is_working_day(date(2027, 10, 23))
    assert cal.is_working_day(date(2026, 11, 24))
    assert "ha-tinh-2027" in cal.closure_reason(date(2027, 10, 14))


def test_an_override_can_supply_a_swap_like_31_august_2026(tmp_path):
    # The same shape of swap the government announced for 2026, supplied for a year the package only estimates.
    path = tmp_path / "swap.yaml"
    path.write_text("name: swap-2027\nclosures:\n  - {date: 2027-08-30, reason: nghỉ bù}\n"
                    "working_days:\n  - {date: 2027-08-21, reason: làm bù}\n", encoding="utf-8")
    cal = load_calendar(path)
    assert not cal.is_working_day(date(2027, 8, 30)) and cal.is_working_day(date(2027, 8, 21))
    assert cal.add_working_days(date(2027, 8, 20), 1) == date(2027, 8, 21)


def test_the_override_version_names_the_file_and_its_hash(override_file):
    import hashlib

    digest = hashlib.sha256(override_file.read_bytes()).hexdigest()[:12]
    assert load_calendar(override_file).version == f"holidays-0.108+override:ha-tinh-2027@{digest}"


def test_the_override_may_set_office_hours(tmp_path):
    path = tmp_path / "hours.yaml"
    path.write_text('name: hours\noffice_hours: ["07:00-11:00", "13:30-17:30"]\n', encoding="utf-8")
    cal = load_calendar(path)
    assert cal.closes_at(date(2025, 5, 5)) == vn(2025, 5, 5, 17, 30)


@pytest.mark.parametrize(("body", "problem"), [
    ("closures: []\n", "name: Field required"),
    ("name: x\nclosures:\n  - date: 2027-02-30\n", "closures.0.date"),
    ("name: x\nholidays: []\n", "holidays: Extra inputs are not permitted"),
    ("name: x\nclosures: [{date: 2027-01-04}]\nworking_days: [{date: 2027-01-04}]\n", "both as closure and"),
    ('name: x\noffice_hours: ["13:00-11:00"]\n', "office_hours"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_a_bad_override_file_is_refused_naming_the_file_and_the_problem(tmp_path, body, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(CalendarError) as caught:
        load_override(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


# --- properties ---------------------------------------------------------------------

_DAYS = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
_INSTANTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda t: t.replace(tzinfo=VN_TZ))


@settings(max_examples=200, deadline=None)
@given(_DAYS, st.integers(min_value=1, max_value=40))
def test_adding_working_days_lands_on_a_working_day_and_counts_back(day, n):
    later = CAL.add_working_days(day, n)
    assert CAL.is_working_day(later)
    assert CAL.working_days_between(day, later) == n


@settings(max_examples=200, deadline=None)
@given(_INSTANTS, st.integers(min_value=0, max_value=80 * 60))
def test_adding_working_time_counts_back(start, minutes):
    amount = timedelta(minutes=minutes)
    end = CAL.add_working_time(start, amount)
    assert end >= start and CAL.working_time_between(start, end) == amount
    assert CAL.is_working_day(end.date())
    assert time(7, 30) <= end.time() <= time(17, 0)
