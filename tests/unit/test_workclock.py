"""The working clock: working seconds since an epoch, and whether it is working time, from the real calendar.

Expected values are counted by hand from the office hours (07:30-11:30, 13:00-17:00), the weekend
and the published holidays (Tết Bính Ngọ: Mon 16 - Fri 20 Feb 2026 off).
"""

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.workcal import VN_TZ, WorkCalendar
from onestop.workclock import WorkingClock

CLOCK = WorkingClock(WorkCalendar())


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


@pytest.mark.parametrize(("start", "end", "hours", "why"), [
    (vn(2026, 12, 3, 8), vn(2026, 12, 3, 10), 2, "a working morning"),
    (vn(2026, 12, 3, 11), vn(2026, 12, 3, 14), 1.5, "lunch does not count"),
    (vn(2026, 12, 3, 18), vn(2026, 12, 4, 6), 0, "a night"),
    (vn(2026, 12, 4, 16), vn(2026, 12, 7, 8, 30), 2, "Friday 16:00 to Monday 08:30 over the weekend"),
    (vn(2026, 2, 13, 16), vn(2026, 2, 23, 8, 30), 2, "over Tết: last hour before, first hour after"),
    (vn(2026, 8, 21, 16), vn(2026, 8, 22, 8, 30), 2, "to the make-up Saturday of August 2026"),
    (vn(2026, 11, 30, 0), vn(2026, 12, 1, 0), 8, "one whole working day"),
    (vn(2026, 11, 23, 17), vn(2026, 11, 25, 7, 30), 0, "Vietnam Cultural Day 24/11/2026"),
])
def test_differences_of_the_clock_are_working_time(start, end, hours, why):
    assert CLOCK.seconds(end) - CLOCK.seconds(start) == hours * 3600, why


@pytest.mark.parametrize(("at", "working", "why"), [
    (vn(2026, 12, 3, 10), True, "Thursday morning"),
    (vn(2026, 12, 3, 7, 29), False, "before opening"),
    (vn(2026, 12, 3, 7, 30), True, "opening"),
    (vn(2026, 12, 3, 12), False, "lunch"),
    (vn(2026, 12, 3, 17), False, "closing"),
    (vn(2026, 12, 3, 22), False, "night"),
    (vn(2026, 12, 6, 10), False, "Sunday"),
    (vn(2026, 2, 17, 10), False, "Mùng 1 Tết"),
    (vn(2026, 8, 22, 10), True, "make-up Saturday"),
    (vn(2026, 12, 3, 3).astimezone(VN_TZ).replace(tzinfo=None), False, "naive time is local"),
])
def test_working_time(at, working, why):
    assert CLOCK.is_working(at) is working, why


def test_the_clock_reads_zero_at_its_epoch_and_refuses_earlier_times():
    assert CLOCK.seconds(vn(2020, 1, 1)) == 0
    with pytest.raises(ValueError):
        CLOCK.seconds(vn(2019, 12, 31, 10))


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31)),
       st.integers(min_value=0, max_value=20 * 24 * 60))
def test_the_clock_never_runs_backwards(start, minutes):
    a = start.replace(tzinfo=VN_TZ)
    b = a + timedelta(minutes=minutes)
    assert CLOCK.seconds(b) >= CLOCK.seconds(a)
    assert CLOCK.seconds(b) - CLOCK.seconds(a) <= minutes * 60


def test_a_later_question_about_an_earlier_day_gives_the_same_answer():
    fresh = WorkingClock(WorkCalendar())
    late = fresh.seconds(vn(2026, 12, 3, 9))
    assert fresh.seconds(vn(2021, 3, 2, 9)) == WorkingClock(WorkCalendar()).seconds(vn(2021, 3, 2, 9))
    assert fresh.seconds(vn(2026, 12, 3, 9)) == late
