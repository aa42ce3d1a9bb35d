"""The SLA clock: legal due dates, receipt checks, pauses and classification.

Expected dates are worked out by hand from the procedure's legal time and the
published 2025-2026 calendar (see test_workcal.py), never from the code.
"""

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onestop.catalogue import Procedure, TimeUnit, default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.fold import fold
from onestop.sla import SlaPolicy, Timeliness, check_receipt, classify, legal_due
from onestop.workcal import VN_TZ, WorkCalendar

E = EventType
CAL = WorkCalendar()
CATALOGUE = default_catalogue()


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def closing(day: date) -> datetime:
    return datetime.combine(day, time(17, 0), tzinfo=VN_TZ)


def custom(unit: TimeUnit, amount: int, **kw) -> Procedure:
    return Procedure(code="X.000001", name="thử", field="Thử", legal_time=amount, time_unit=unit,
                     financial_wait_pauses=False, version="t1", **kw)


# --- legal due dates ----------------------------------------------------------------


@pytest.mark.parametrize(("code", "accepted", "due_day"), [
    # Same day, 15:00 cut-off.
    ("1.001193", vn(2025, 5, 5, 14, 59), date(2025, 5, 5)),
    ("1.001193", vn(2025, 5, 5, 15, 0), date(2025, 5, 5)),  # "after 15:00" excludes 15:00 itself
    ("1.001193", vn(2025, 5, 5, 15, 4), date(2025, 5, 6)),
    ("1.000656", vn(2026, 2, 13, 15, 4), date(2026, 2, 23)),  # Friday 15:04 before Tết 2026
    ("2.000884", vn(2025, 8, 29, 15, 4), date(2025, 9, 3)),  # Friday before National Day 2025 (1-2/9 off)
    ("2.000635", vn(2026, 8, 28, 15, 4), date(2026, 9, 3)),  # Friday before the 31/8 swap and 1-2/9
    ("1.000894", vn(2025, 4, 25, 15, 4), date(2025, 4, 26)),  # next working day is the make-up Saturday
    ("2.000815", vn(2025, 4, 29, 15, 4), date(2025, 5, 5)),  # 30/4, 1/5, swapped 2/5, weekend
    ("1.001193", vn(2025, 5, 3, 10, 0), date(2025, 5, 5)),  # accepted on a Saturday: next working day
    ("1.001193", vn(2025, 4, 26, 10, 0), date(2025, 4, 26)),  # the make-up Saturday is a working day
    ("1.001193", vn(2026, 11, 24, 9, 0), date(2026, 11, 25)),  # accepted on Vietnam Cultural Day
    # Working days: the day of acceptance is not counted.
    ("2.000720", vn(2026, 11, 23, 9, 0), date(2026, 11, 27)),  # 3 wd over 24/11
    ("1.013978", vn(2026, 2, 13, 16, 0), date(2026, 3, 20)),  # 20 wd over Tết
    ("1.004884", vn(2026, 8, 26, 10, 0), date(2026, 9, 7)),  # 5 wd: 27, 28/8, 3, 4, 7/9
    ("1.004884", vn(2026, 8, 21, 10, 0), date(2026, 8, 27)),  # 5 wd: 22 (Sat, worked), 24, 25, 26, 27/8
    ("2.000720", vn(2025, 5, 3, 10, 0), date(2025, 5, 8)),  # Saturday counts as Monday's start: 6, 7, 8/5
    ("2.000720", vn(2025, 5, 5, 16, 30), date(2025, 5, 8)),  # no cut-off on working-day procedures
    ("2.000720", vn(2025, 5, 5, 17, 30), date(2025, 5, 9)),  # after office hours: counted from Tuesday
])
def test_legal_due_dates_of_catalogue_procedures(code, accepted, due_day):
    result = legal_due(accepted, CATALOGUE.get(code), CAL)
    assert result.due_at == closing(due_day)
    assert result.calendar_version == "holidays-0.108" and result.procedure_version == "2025.07"


@pytest.mark.parametrize(("unit", "amount", "accepted", "due"), [
    # Calendar days: first day not counted; a period ending on a day off ends on the next working day.
    (TimeUnit.CALENDAR_DAYS, 10, vn(2025, 4, 16, 9, 0), closing(date(2025, 4, 26))),  # lands on the make-up Sat
    (TimeUnit.CALENDAR_DAYS, 10, vn(2025, 4, 21, 9, 0), closing(date(2025, 5, 5))),  # lands on 1/5
    (TimeUnit.CALENDAR_DAYS, 3, vn(2026, 11, 21, 9, 0), closing(date(2026, 11, 26))),  # Sat → Mon 23 + 3
    # Hours: working hours inside 07:30-11:30 and 13:00-17:00.
    (TimeUnit.HOURS, 4, vn(2025, 5, 5, 10, 0), vn(2025, 5, 5, 15, 30)),
    (TimeUnit.HOURS, 8, vn(2025, 4, 25, 16, 0), vn(2025, 4, 26, 16, 0)),
    (TimeUnit.HOURS, 2, vn(2026, 2, 13, 16, 30), vn(2026, 2, 23, 9, 0)),  # 30 min Friday, 1.5 h after Tết
    (TimeUnit.SAME_DAY, 0, vn(2025, 5, 5, 18, 0), closing(date(2025, 5, 6))),  # no cut-off, but after hours
])
def test_legal_due_dates_in_calendar_days_and_hours(unit, amount, accepted, due):
    assert legal_due(accepted, custom(unit, amount), CAL).due_at == due


def test_the_rule_explains_a_cut_off_shift():
    rule = legal_due(vn(2026, 2, 13, 15, 4), CATALOGUE.get("1.001193"), CAL).rule
    assert "15:00 cut-off" in rule and "2026-02-23" in rule


_EVERY_UNIT = [*CATALOGUE, custom(TimeUnit.CALENDAR_DAYS, 10), custom(TimeUnit.HOURS, 3),
               custom(TimeUnit.HOURS, 20), custom(TimeUnit.WORKING_DAYS, 1, cutoff=time(15, 0))]


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 6, 1)), st.sampled_from(_EVERY_UNIT))
def test_a_legal_due_date_is_never_a_non_working_day(accepted, procedure):
    result = legal_due(accepted.replace(tzinfo=VN_TZ), procedure, CAL)
    assert CAL.is_working_day(result.due_at.date())
    assert result.due_at > accepted.replace(tzinfo=VN_TZ)


# --- receipt checks -----------------------------------------------------------------


@pytest.mark.parametrize(("code", "accepted", "receipt", "verdict", "beyond"), [
    ("1.001193", vn(2025, 5, 5, 10, 0), vn(2025, 5, 5, 16, 0), "within_law", 0),
    ("1.001193", vn(2025, 5, 5, 10, 0), vn(2025, 5, 5, 23, 0), "within_law", 0),  # dates are compared
    ("1.001193", vn(2025, 5, 5, 10, 0), vn(2025, 5, 6, 8, 0), "later_than_law", 1),
    ("1.000894", vn(2025, 5, 5, 9, 0), vn(2025, 5, 9, 17, 0), "within_exception", 4),  # ≤5 wd if verified
    ("1.000894", vn(2025, 5, 5, 9, 0), vn(2025, 5, 13, 17, 0), "later_than_law", 6),
    ("2.000720", vn(2026, 11, 23, 9, 0), vn(2026, 11, 27, 17, 0), "within_law", 0),
    ("2.000720", vn(2026, 11, 23, 9, 0), vn(2026, 11, 30, 17, 0), "later_than_law", 1),
])
def test_receipts_promising_later_than_the_law_are_flagged(code, accepted, receipt, verdict, beyond):
    check = check_receipt(accepted, receipt, CATALOGUE.get(code), CAL)
    assert (check.verdict, check.working_days_beyond_law) == (verdict, beyond)
    assert check.flagged is (verdict == "later_than_law")


def test_receipt_checks_can_compare_instants():
    check = check_receipt(vn(2025, 5, 5, 10, 0), vn(2025, 5, 5, 17, 30), CATALOGUE.get("1.001193"), CAL,
                          SlaPolicy(boundary="instant"))
    assert check.verdict == "later_than_law"


# --- classification -----------------------------------------------------------------

ACCEPTED_AT = vn(2025, 5, 5, 9, 0)  # Monday; 3 wd → due Thursday 8 May 2025
DUE = closing(date(2025, 5, 8))


def dossier(*steps: tuple[EventType, datetime], procedure: str = "2.000720", due: datetime = DUE, **extra):
    events = [DossierEvent(event_id="e1", event_type=E.ACCEPTED, dossier_id="D", seq=1, occurred_at=ACCEPTED_AT,
                           commune_code="18754", procedure_code=procedure, channel=Channel.IN_PERSON, due_at=due)]
    for seq, (kind, at) in enumerate(steps, start=2):
        events.append(DossierEvent(event_id=f"e{seq}", event_type=kind, dossier_id="D", seq=seq, occurred_at=at,
                                   commune_code="18754", procedure_code=procedure, channel=Channel.IN_PERSON,
                                   **extra.get(kind.value, {})))
    return fold(events)


def judge(state, at=None, **policy):
    return classify(state, at or vn(2025, 6, 1), calendar=CAL, catalogue=CATALOGUE, policy=SlaPolicy(**policy))


@pytest.mark.parametrize(("finished", "expected"), [
    (vn(2025, 5, 7, 16, 0), Timeliness.BEFORE_DUE),
    (vn(2025, 5, 8, 8, 0), Timeliness.ON_DUE),
    (vn(2025, 5, 8, 20, 0), Timeliness.ON_DUE),  # same date: on due by default
    (vn(2025, 5, 9, 8, 0), Timeliness.OVERDUE),
])
def test_resolved_dossiers_are_before_on_or_over_due(finished, expected):
    verdict = judge(dossier((E.RESULT_READY, finished)))
    assert verdict.resolved and verdict.timeliness is expected and verdict.calendar_version == "holidays-0.108"


def test_collecting_the_result_late_does_not_make_a_dossier_late():
    state = dossier((E.RESULT_READY, vn(2025, 5, 8, 10, 0)), (E.RESULT_RETURNED, vn(2025, 5, 20, 10, 0)))
    assert judge(state).timeliness is Timeliness.ON_DUE


def test_the_boundary_can_compare_timestamps_instead_of_dates():
    state = dossier((E.RESULT_READY, vn(2025, 5, 8, 17, 30)))
    assert judge(state, boundary="instant").timeliness is Timeliness.OVERDUE


def test_a_processing_stage_supplement_pauses_the_clock():
    # Paused Tue 09:00 → Wed 09:00 = 8 working hours: due moves from Thu 17:00 to Fri 17:00.
    state = dossier((E.SUPPLEMENT_REQUESTED, vn(2025, 5, 6, 9, 0)), (E.SUPPLEMENT_RECEIVED, vn(2025, 5, 7, 9, 0)),
                    (E.RESULT_READY, vn(2025, 5, 9, 10, 0)))
    verdict = judge(state)
    assert verdict.paused == timedelta(hours=8) and verdict.judged_due_at == closing(date(2025, 5, 9))
    assert verdict.timeliness is Timeliness.ON_DUE


def test_a_second_processing_stage_supplement_counts_as_overdue_by_default():
    state = dossier((E.SUPPLEMENT_REQUESTED, vn(2025, 5, 5, 10, 0)), (E.SUPPLEMENT_RECEIVED, vn(2025, 5, 5, 11, 0)),
                    (E.SUPPLEMENT_REQUESTED, vn(2025, 5, 5, 13, 0)), (E.SUPPLEMENT_RECEIVED, vn(2025, 5, 5, 14, 0)),
                    (E.RESULT_READY, vn(2025, 5, 6, 10, 0)))
    assert judge(state).timeliness is Timeliness.OVERDUE
    assert judge(state, second_supplement_is_overdue=False).timeliness is Timeliness.BEFORE_DUE


def test_a_financial_wait_pauses_only_procedures_that_exclude_it():
    steps = ((E.FINANCIAL_OBLIGATION_REQUESTED, vn(2025, 5, 6, 9, 0)),
             (E.FINANCIAL_OBLIGATION_FULFILLED, vn(2025, 5, 13, 9, 0)),
             (E.RESULT_READY, vn(2025, 5, 14, 10, 0)))
    land = judge(dossier(*steps, procedure="1.013978"))  # land: the tax wait is outside the time limit
    household = judge(dossier(*steps, procedure="2.000720"))
    assert land.paused == timedelta(hours=40) and land.timeliness is Timeliness.BEFORE_DUE
    assert household.paused == timedelta() and household.timeliness is Timeliness.OVERDUE


def test_an_extension_is_judged_against_the_original_once_resolved_and_the_new_date_while_open():
    extended = {"extended": {"due_at": closing(date(2025, 5, 13)), "reason": "cần xác minh"}}
    steps = [(E.EXTENDED, vn(2025, 5, 7, 9, 0))]
    open_state = dossier(*steps, **extended)
    assert open_state.original_due_at == DUE and open_state.due_at == closing(date(2025, 5, 13))
    assert judge(open_state, vn(2025, 5, 12, 10, 0)).timeliness is Timeliness.WITHIN_DUE
    assert judge(open_state, vn(2025, 5, 13, 9, 0)).timeliness is Timeliness.DUE_SOON
    assert judge(open_state, vn(2025, 5, 14, 8, 0)).timeliness is Timeliness.OVERDUE
    resolved = dossier(*steps, (E.RESULT_READY, vn(2025, 5, 12, 10, 0)), **extended)
    assert judge(resolved).timeliness is Timeliness.OVERDUE
    assert judge(resolved, judge_resolved_against="effective").timeliness is Timeliness.BEFORE_DUE


@pytest.mark.parametrize(("at", "expected"), [
    (vn(2025, 5, 6, 10, 0), Timeliness.WITHIN_DUE),  # 22.5 working hours left
    (vn(2025, 5, 7, 17, 0), Timeliness.DUE_SOON),  # exactly one working day left
    (vn(2025, 5, 8, 16, 59), Timeliness.DUE_SOON),
    (vn(2025, 5, 8, 22, 0), Timeliness.DUE_SOON),  # still the due date
    (vn(2025, 5, 9, 0, 1), Timeliness.OVERDUE),
])
def test_open_dossiers_are_within_due_due_soon_or_overdue(at, expected):
    verdict = judge(dossier(), at)
    assert not verdict.resolved and verdict.timeliness is expected


def test_the_due_soon_horizon_is_configurable():
    state, at = dossier(), vn(2025, 5, 7, 18, 0)  # 23 clock hours before Thu 17:00
    assert judge(state, at, due_soon_unit="clock_hours", due_soon_within=24).timeliness is Timeliness.DUE_SOON
    assert judge(state, vn(2025, 5, 6, 10, 0), due_soon_within=24).timeliness is Timeliness.DUE_SOON


def test_a_dossier_waiting_for_a_supplement_is_its_own_sub_bucket_and_cannot_fall_overdue():
    state = dossier((E.SUPPLEMENT_REQUESTED, vn(2025, 5, 6, 9, 0)))
    verdict = judge(state, vn(2025, 5, 30, 10, 0))
    assert verdict.waiting == "supplement" and verdict.timeliness is not Timeliness.OVERDUE


def test_a_stop_before_the_result_is_judged_at_the_stop():
    verdict = judge(dossier((E.PROCESSING_STOPPED, vn(2025, 5, 9, 9, 0))))
    assert verdict.resolved and verdict.timeliness is Timeliness.OVERDUE


def test_a_dossier_never_accepted_has_no_clock():
    state = fold([DossierEvent(event_id="s", event_type=E.SUBMITTED, dossier_id="D", seq=1, occurred_at=ACCEPTED_AT,
                               commune_code="18754", procedure_code="2.000720", channel=Channel.ONLINE)])
    assert judge(state).timeliness is None
