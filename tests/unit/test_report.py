"""Form 06: counts per period and unit, and the identity received = resolved + in progress + closed apart."""

from datetime import date, datetime, time, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fold import dossier_history

from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.report import Form06Row, form06
from onestop.workcal import VN_TZ, WorkCalendar

E = EventType
CAL = WorkCalendar()
CATALOGUE = default_catalogue()
MAY_START, MAY_END = datetime(2025, 5, 1, tzinfo=VN_TZ), datetime(2025, 6, 1, tzinfo=VN_TZ)


def vn(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=VN_TZ)


def due(month: int, day: int) -> datetime:
    return datetime.combine(date(2025, month, day), time(17, 0), tzinfo=VN_TZ)


def history(dossier: str, channel: Channel, accepted: datetime, due_at: datetime, *steps: tuple[EventType, datetime],
            procedure: str = "2.000720", handling: str | None = None) -> list[DossierEvent]:
    common = dict(dossier_id=dossier, commune_code="18754", procedure_code=procedure, channel=channel,
                  handling_commune_code=handling)
    events = [DossierEvent(event_id=f"{dossier}1", event_type=E.ACCEPTED, seq=1, occurred_at=accepted,
                           due_at=due_at, **common)]
    for seq, (kind, at) in enumerate(steps, start=2):
        events.append(DossierEvent(event_id=f"{dossier}{seq}", event_type=kind, seq=seq, occurred_at=at, **common))
    return events


IN_PERSON, ONLINE, POSTAL = Channel.IN_PERSON, Channel.ONLINE, Channel.POSTAL
# May 2025. Due dates are the receipts' (3 working days for 2.000720; 30/4-2/5 are off).
MAY = [
    *history("A", IN_PERSON, vn(4, 28), due(5, 6), (E.RESULT_READY, vn(5, 6))),  # carried over, on due
    *history("L", IN_PERSON, vn(4, 28), due(5, 6)),  # carried over, still open: overdue
    *history("G", IN_PERSON, vn(4, 21), due(4, 24), (E.RESULT_READY, vn(4, 24))),  # closed in April
    *history("B", ONLINE, vn(5, 5), due(5, 8), (E.RESULT_READY, vn(5, 9))),  # overdue
    *history("M", ONLINE, vn(5, 5), due(5, 12), (E.RESULT_READY, vn(5, 7)),
             procedure="1.004884", handling="03595"),  # before due, another handling commune
    *history("C", IN_PERSON, vn(5, 12), due(5, 15)),  # open past due
    *history("D", POSTAL, vn(5, 30), due(6, 4)),  # open, within due
    *history("K", ONLINE, vn(5, 26), due(5, 29), (E.SUPPLEMENT_REQUESTED, vn(5, 27))),  # paused: within due
    *history("E", IN_PERSON, vn(5, 6), due(5, 9), (E.PROCESSING_STOPPED, vn(5, 7))),
    *history("I", ONLINE, vn(5, 6), due(5, 9), (E.WITHDRAWAL_REQUESTED, vn(5, 7))),
    *history("J", IN_PERSON, vn(5, 6), due(5, 9), (E.REFUSED, vn(5, 8))),
    *history("H", IN_PERSON, vn(6, 2), due(6, 5)),  # next period
    DossierEvent(event_id="F1", event_type=E.REFUSED_AT_RECEPTION, dossier_id="F", seq=1, occurred_at=vn(5, 6),
                 commune_code="18754", procedure_code="2.000720", channel=IN_PERSON),  # never received
]


def counts(row: Form06Row) -> dict:
    return {k: v for k, v in msgspec.structs.asdict(row).items() if k != "group" and v}


def test_form06_for_may_2025():
    report = form06(MAY, MAY_START, MAY_END, calendar=CAL, catalogue=CATALOGUE)
    assert counts(report.total) == {
        "carried_over": 2, "new_online": 4, "new_in_person_or_post": 4, "received": 10,
        "resolved_before_due": 1, "resolved_on_due": 1, "resolved_overdue": 1, "resolved": 3,
        "in_progress_within_due": 2, "in_progress_overdue": 2, "in_progress": 4, "waiting_supplement": 1,
        "stopped": 1, "withdrawn": 1, "refused": 1,
    }
    assert report.total.balances and report.total.on_time_rate == pytest.approx(2 / 3)
    assert report.calendar_version == "holidays-0.108"


def test_rows_per_handling_commune_and_field():
    report = form06(MAY, MAY_START, MAY_END, calendar=CAL, catalogue=CATALOGUE,
                    group_by=("handling_commune", "field"))
    rows = {(r.group["handling_commune"], r.group["field"]): r for r in report.rows}
    assert set(rows) == {("03595", "Hộ tịch"), ("18754", "Hộ kinh doanh")}
    assert counts(rows[("03595", "Hộ tịch")]) == {"new_online": 1, "received": 1, "resolved_before_due": 1,
                                                   "resolved": 1}
    assert rows[("18754", "Hộ kinh doanh")].received == 9


def test_a_dossier_due_on_the_last_day_is_still_within_due_when_the_books_close():
    events = history("Z", IN_PERSON, vn(5, 27), due(5, 30))
    report = form06(events, MAY_START, datetime(2025, 5, 31, tzinfo=VN_TZ), calendar=CAL, catalogue=CATALOGUE)
    assert report.total.in_progress_within_due == 1


def test_an_empty_period_or_unknown_grouping_is_refused():
    with pytest.raises(ValueError, match="empty"):
        form06(MAY, MAY_END, MAY_START, calendar=CAL)
    with pytest.raises(ValueError, match="cannot group by"):
        form06(MAY, MAY_START, MAY_END, calendar=CAL, group_by=("district",))


_COLUMNS = [f for f in Form06Row.__struct_fields__ if f != "group"]


@st.composite
def province_history(draw) -> list[DossierEvent]:
    dossiers = draw(st.integers(min_value=1, max_value=8))
    return [e for i in range(dossiers) for e in draw(dossier_history(dossier_id=f"D{i}"))]


@settings(max_examples=60, deadline=None)
@given(st.data(), province_history(), st.sampled_from([(), ("handling_commune",), ("field", "procedure")]))
def test_the_form06_identity_holds_for_any_history(data, events, group_by):
    # Periods near the history's own dates, so most reports count something.
    anchor = data.draw(st.sampled_from(events)).occurred_at.date()
    start = datetime.combine(anchor - timedelta(days=data.draw(st.integers(0, 40))), time.min, tzinfo=VN_TZ)
    end = start + timedelta(days=data.draw(st.integers(min_value=1, max_value=90)))
    report = form06(events, start, end, calendar=CAL, catalogue=CATALOGUE, group_by=group_by)
    assert report.total.balances and all(row.balances for row in report.rows)
    for column in _COLUMNS:
        assert getattr(report.total, column) == sum(getattr(row, column) for row in report.rows)
    assert report.total.waiting_supplement + report.total.waiting_financial <= report.total.in_progress
