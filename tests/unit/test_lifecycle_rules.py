"""Three lifecycle rules the sources leave open, as settled in docs/domain.md.

- An extension letter issued while a supplement is outstanding: the waiting
  that goes on after the letter still pauses the clock.
- ``result_ready`` while a supplement or payment wait is open: accepted by
  default (the wait ends at the finish); a policy can reject it instead.
- ``due_date_corrected`` after the finish never changes the class, whether the
  result is still at the desk (9) or already handed over (10).

Dates are worked out by hand: 2.000720 has 3 working days, so a dossier
accepted Monday 5 May 2025 09:00 is due Thursday 8 May 17:00. Office hours are
07:30–11:30 and 13:00–17:00 (8 working hours a day); May 2025 has no holiday
after the 2nd.
"""

from datetime import date, datetime, time, timedelta

import pytest

from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.fold import ALLOWED, apply, fold, transitions
from onestop.report import form06
from onestop.sla import SlaPolicy, Timeliness, classify
from onestop.workcal import VN_TZ, WorkCalendar

E = EventType
CAL = WorkCalendar()
CATALOGUE = default_catalogue()


def vn(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=VN_TZ)


def closing(month: int, day: int) -> datetime:
    return datetime.combine(date(2025, month, day), time(17, 0), tzinfo=VN_TZ)


def events(*steps: tuple, procedure: str = "2.000720") -> list[DossierEvent]:
    """Accepted Mon 5 May 09:00 with the receipt's date Thu 8 May; then ``steps`` as (type, at[, due_at])."""
    common = dict(dossier_id="D", commune_code="18754", procedure_code=procedure, channel=Channel.IN_PERSON)
    out = [DossierEvent(event_id="D-1", event_type=E.ACCEPTED, seq=1, occurred_at=vn(5, 5), due_at=closing(5, 8),
                        **common)]
    for seq, (kind, at, *due) in enumerate(steps, start=2):
        out.append(DossierEvent(event_id=f"D-{seq}", event_type=kind, seq=seq, occurred_at=at,
                                due_at=due[0] if due else None, **common))
    return out


def judge(state, at, **policy):
    return classify(state, at, calendar=CAL, catalogue=CATALOGUE, policy=SlaPolicy(**policy))


# --- an extension letter while a supplement is outstanding -----------------------------

SUPPLEMENT_THEN_LETTER = (
    (E.SUPPLEMENT_REQUESTED, vn(5, 6)),  # Tue 6 May 09:00: the citizen must supplement
    (E.EXTENDED, vn(5, 7), closing(5, 13)),  # Wed 7 May 09:00: letter, new date Tue 13 May
)


def test_a_dossier_still_waiting_after_an_extension_letter_cannot_become_overdue():
    state = fold(events(*SUPPLEMENT_THEN_LETTER))
    at = vn(5, 30)  # long after the new date, the citizen has still not supplemented
    verdict = judge(state, at)
    assert verdict.waiting == "supplement"
    assert verdict.timeliness is not Timeliness.OVERDUE
    # Wed 7 May 09:00 → Fri 30 May 09:00 is 17 working days (7..9, 12..16, 19..23, 26..30 May minus the last).
    assert verdict.paused == timedelta(hours=17 * 8)


def test_the_waiting_after_the_letter_moves_the_new_date_once_the_supplement_arrives():
    received = vn(5, 19)  # Mon 19 May 09:00
    state = fold(events(*SUPPLEMENT_THEN_LETTER, (E.SUPPLEMENT_RECEIVED, received)))
    verdict = judge(state, vn(5, 20, 10))
    # Paused after the letter: Wed 7 May 09:00 → Mon 19 May 09:00 = 8 working days (7, 8, 9, 12..16 May).
    # The new date Tue 13 May 17:00 plus 8 working days: 14, 15, 16, 19, 20, 21, 22, 23 May.
    assert verdict.paused == timedelta(hours=64)
    assert verdict.judged_due_at == closing(5, 23)
    assert verdict.timeliness is Timeliness.WITHIN_DUE


def test_a_wait_that_ended_before_the_letter_does_not_move_the_new_date():
    state = fold(events((E.SUPPLEMENT_REQUESTED, vn(5, 6)), (E.SUPPLEMENT_RECEIVED, vn(5, 6, 14)),
                        (E.EXTENDED, vn(5, 7), closing(5, 13))))
    verdict = judge(state, vn(5, 12, 10))
    assert verdict.paused == timedelta() and verdict.judged_due_at == closing(5, 13)


# --- result_ready while a wait is open -----------------------------------------------


@pytest.mark.parametrize(("wait", "procedure"), [(E.SUPPLEMENT_REQUESTED, "2.000720"),
                                                 (E.FINANCIAL_OBLIGATION_REQUESTED, "1.013978")])
def test_result_ready_during_a_wait_is_accepted_and_closes_the_wait(wait, procedure):
    finished = vn(5, 7, 10)
    history = events((wait, vn(5, 6)), (E.RESULT_READY, finished), procedure=procedure)
    state, rejected = None, []
    for e in history:
        outcome = apply(state, e)
        state, rejected = outcome.state, rejected + list(outcome.rejected)
    assert rejected == []
    assert state.status == 9 and not state.is_open and state.finished_at == finished
    assert state.pauses[-1].end == finished  # the wait ends at the finish
    verdict = judge(state, vn(5, 30))
    assert verdict.resolved and verdict.timeliness is Timeliness.BEFORE_DUE


def test_a_policy_can_reject_result_ready_during_a_wait():
    policy = SlaPolicy(result_ready_while_waiting="reject")
    history = events((E.SUPPLEMENT_REQUESTED, vn(5, 6)), (E.RESULT_READY, vn(5, 7, 10)))
    state = apply(None, history[0], policy.transitions).state
    state = apply(state, history[1], policy.transitions).state
    outcome = apply(state, history[2], policy.transitions)
    assert [r.code for r in outcome.rejected] == ["illegal_transition"]
    assert outcome.state.status == 5 and outcome.state.is_open


def test_the_default_table_accepts_result_ready_in_both_waits_and_the_strict_one_in_neither():
    assert E.RESULT_READY in ALLOWED[5] and E.RESULT_READY in ALLOWED[6]
    strict = transitions("reject")
    assert E.RESULT_READY not in strict[5] and E.RESULT_READY not in strict[6]
    with pytest.raises(ValueError, match="result_ready_while_waiting"):
        transitions("maybe")


def test_the_form06_report_follows_the_policy():
    history = events((E.SUPPLEMENT_REQUESTED, vn(5, 6)), (E.RESULT_READY, vn(5, 7, 10)))
    start, end = datetime(2025, 5, 1, tzinfo=VN_TZ), datetime(2025, 6, 1, tzinfo=VN_TZ)
    accepted = form06(history, start, end, calendar=CAL, catalogue=CATALOGUE)
    rejected = form06(history, start, end, calendar=CAL, catalogue=CATALOGUE,
                      policy=SlaPolicy(result_ready_while_waiting="reject"))
    assert (accepted.total.resolved_before_due, accepted.total.in_progress) == (1, 0)
    assert (rejected.total.resolved, rejected.total.in_progress, rejected.total.waiting_supplement) == (0, 1, 1)


# --- due_date_corrected after the finish ---------------------------------------------

LATE_RESULT = (E.RESULT_READY, vn(5, 9, 10))  # Fri 9 May: a day after the receipt's date
CORRECTION = (E.DUE_DATE_CORRECTED, vn(5, 12), closing(5, 12))  # "fixes" the receipt to Mon 12 May


@pytest.mark.parametrize("steps", [
    (LATE_RESULT, CORRECTION),  # the result still waits at the desk: status 9
    (LATE_RESULT, (E.RESULT_RETURNED, vn(5, 9, 14)), (E.DUE_DATE_CORRECTED, vn(5, 12), closing(5, 12))),  # status 10
], ids=["status 9", "status 10"])
def test_a_correction_after_the_finish_never_changes_the_class(steps):
    history = events(*steps)
    state, rejected = None, []
    for e in history:
        outcome = apply(state, e)
        state, rejected = outcome.state, rejected + list(outcome.rejected)
    assert [(r.code, r.event.event_type) for r in rejected] == [("illegal_transition", E.DUE_DATE_CORRECTED)]
    assert "class is fixed at the finish" in rejected[0].message
    assert state.original_due_at == closing(5, 8) and state.due_at == closing(5, 8)
    assert judge(state, vn(5, 30)).timeliness is Timeliness.OVERDUE
    report = form06(history, datetime(2025, 5, 1, tzinfo=VN_TZ), datetime(2025, 6, 1, tzinfo=VN_TZ),
                    calendar=CAL, catalogue=CATALOGUE)
    assert report.total.resolved_overdue == 1


def test_a_correction_before_the_finish_still_applies():
    state = fold(events(CORRECTION, (E.RESULT_READY, vn(5, 12, 10))))
    assert state.original_due_at == closing(5, 12)
    assert judge(state, vn(5, 30)).timeliness is Timeliness.ON_DUE
