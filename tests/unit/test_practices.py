"""Service practices measured on single dossiers: reception, same day, missed promises, service days, satisfaction.

Dates (Hà Tĩnh local time): Thu 5 Nov 2026 and Wed 4 Nov are working days; Sat 7 Nov is a day off.
"""

from datetime import date, datetime, time, timedelta, timezone
from math import ceil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onestop.events import Channel, DossierEvent, EventType, Rating, ReceptionPoint
from onestop.fold import fold
from onestop.lateness import Delivery, arrival, delivery_headers, late_data, nearest_rank
from onestop.practices import (judge_reception, missed_promise, missed_promises, practice_keys, promised,
                               resolved_same_day, same_day_table)
from onestop.satisfaction import SatisfactionRow, satisfaction_table
from onestop.servicecal import ServiceCalendar
from onestop.servicefile import parse_service_file
from onestop.workcal import VN_TZ

E = EventType
DONG_LOC, KY_VAN, OTHER = "18484", "18787", "18073"
FILE = f"""commune_code,kind,date,weekdays,valid_from,valid_until,hours,procedures,note
{DONG_LOC},no_appointment,,thursday,2025-07-01,,,2.000815;LOCAL-CT-0001,
{DONG_LOC},weekend_service,2026-11-07,,,,07:30-11:30,,
{KY_VAN},village_service,,saturday,2025-07-01,,07:30-11:30,,
""".encode()
CAL = ServiceCalendar.from_file(parse_service_file(FILE, "test.csv"))
THU, WED, SAT = date(2026, 11, 5), date(2026, 11, 4), date(2026, 11, 7)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=VN_TZ)


def dossier(accepted: datetime, ready: datetime | None, *, commune=DONG_LOC, procedure="2.000815",
            channel=Channel.IN_PERSON, point=None, group=None, rating=None, closing=E.RESULT_READY):
    extra = {}
    if point is not None:
        extra["reception_point"] = point
    if group is not None:
        extra["beneficiary_group"] = group
    common = dict(dossier_id="D", commune_code=commune, procedure_code=procedure, channel=channel)
    evs = [DossierEvent(event_id="1", event_type=E.ACCEPTED, seq=1, occurred_at=accepted,
                        due_at=accepted + timedelta(days=3), **common, **extra)]
    if ready is not None:
        evs.append(DossierEvent(event_id="2", event_type=closing, seq=2, occurred_at=ready, **common))
    if rating is not None:
        evs.append(DossierEvent(event_id="3", event_type=E.RATED, seq=len(evs) + 1, occurred_at=ready or accepted,
                                rating=rating, **common))
    return fold(evs)


@pytest.mark.parametrize(("case", "state", "point", "service", "no_appt", "listed", "same_day"), [
    ("Thursday, listed, done by noon", dossier(at(THU, 8), at(THU, 11)), "counter", "regular", True, True, True),
    ("Thursday, listed, done next day", dossier(at(THU, 8), at(THU + timedelta(1), 9)), "counter", "regular",
     True, True, False),
    ("Thursday, not listed", dossier(at(THU, 8), at(THU, 9), procedure="1.004873"), "counter", "regular",
     True, False, True),
    ("Wednesday, listed", dossier(at(WED, 8), at(WED, 9)), "counter", "regular", False, False, True),
    ("online on Thursday", dossier(at(THU, 8), at(THU, 9), channel=Channel.ONLINE), "online", "regular",
     True, True, False),
    ("v1 in person on a village Saturday", dossier(at(SAT, 8), at(SAT, 10), commune=KY_VAN), "outreach",
     "village_service", False, False, True),
    ("outreach on a Wednesday", dossier(at(WED, 8), None, commune=KY_VAN, point=ReceptionPoint.OUTREACH),
     "outreach", "village_service", False, False, False),
    ("weekend service day at the counter", dossier(at(SAT, 9), None), "counter", "weekend_service",
     False, False, False),
    ("online, accepted on the weekend service day", dossier(at(SAT, 9), None, channel=Channel.ONLINE),
     "online", "weekend_service", False, False, False),
    ("stopped the same day is not resolved", dossier(at(THU, 8), at(THU, 9), closing=E.PROCESSING_STOPPED),
     "counter", "regular", True, True, False),
    ("postal on a Saturday elsewhere", dossier(at(SAT, 9), None, commune=OTHER, channel=Channel.POSTAL),
     "postal", "regular", False, False, False),
])
def test_reception_and_same_day(case, state, point, service, no_appt, listed, same_day):
    r = judge_reception(state, CAL)
    assert (r.point, r.service, r.no_appointment_day, r.listed) == (point, service, no_appt, listed), case
    assert resolved_same_day(state, r) is same_day, case


def test_a_promise_is_missed_only_once_the_day_is_over():
    late = dossier(at(THU, 8), at(THU + timedelta(1), 9))
    r = judge_reception(late, CAL)
    assert promised(r)
    assert not missed_promise(late, r, at(THU, 16, 59))
    assert missed_promise(late, r, at(THU + timedelta(1), 0, 1))
    kept = dossier(at(THU, 8), at(THU, 16))
    assert not missed_promise(kept, judge_reception(kept, CAL), at(THU + timedelta(3), 9))
    open_ = dossier(at(THU, 8), None)
    assert missed_promise(open_, judge_reception(open_, CAL), at(THU + timedelta(1), 9))


def test_an_online_dossier_on_a_no_appointment_day_promises_nothing():
    state = dossier(at(THU, 8), None, channel=Channel.ONLINE)
    assert not promised(judge_reception(state, CAL))


def test_no_reception_before_acceptance():
    submitted = fold([DossierEvent(event_id="1", event_type=E.SUBMITTED, dossier_id="D", seq=1, occurred_at=at(THU, 8),
                                   commune_code=DONG_LOC, procedure_code="2.000815", channel=Channel.ONLINE)])
    assert judge_reception(submitted, CAL) is None
    assert practice_keys(submitted, None, None) == ()


def test_practice_keys_of_one_dossier():
    state = dossier(at(SAT, 9), at(SAT, 10), group="người có công", rating=Rating(score=2))
    keys = practice_keys(state, judge_reception(state, CAL), "on_due")
    assert set(keys) == {
        ("sameday", "2026-11-07", DONG_LOC, "2.000815", "counter", False, False, "received"),
        ("sameday", "2026-11-07", DONG_LOC, "2.000815", "counter", False, False, "same_day"),
        ("service", "2026-11-07", DONG_LOC, "weekend_service", "counter", "2.000815", "người có công"),
        ("satisfaction", "2026-11-01", DONG_LOC, "finished"),
        ("satisfaction", "2026-11-01", DONG_LOC, "complaint_or_bad_rating"),  # 2 of 5 is a bad rating
        ("satisfaction", "2026-11-01", DONG_LOC, "rated"),
    }
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(("rating", "outcome", "measures"), [
    (None, "on_due", {"finished"}),
    (Rating(score=3), "before_due", {"finished", "rated"}),
    (Rating(score=5, complaint=True), "overdue", {"finished", "overdue", "complaint_or_bad_rating", "rated"}),
    (Rating(score=1), "overdue", {"finished", "overdue", "complaint_or_bad_rating", "rated"}),
    (None, None, set()),
])
def test_satisfaction_keys(rating, outcome, measures):
    state = dossier(at(WED, 8), at(WED, 9), rating=rating)
    keys = practice_keys(state, judge_reception(state, CAL), outcome)
    assert {k[3] for k in keys if k[0] == "satisfaction"} == measures


def test_satisfaction_is_counted_in_the_local_month_of_the_finish():
    # 18:00 UTC on 30 Nov is 01:00 on 1 Dec in Hà Tĩnh.
    state = dossier(at(date(2026, 11, 30), 8), datetime(2026, 11, 30, 18, 0, tzinfo=timezone.utc))
    keys = practice_keys(state, judge_reception(state, CAL), "on_due")
    assert ("satisfaction", "2026-12-01", DONG_LOC, "finished") in keys


def test_same_day_table_and_missed_promises():
    states = [dossier(at(THU, 8), at(THU, 10)), dossier(at(THU, 9), at(THU + timedelta(1), 10)),
              dossier(at(THU, 9), None), dossier(at(WED, 9), at(WED, 10)), dossier(at(WED, 9), None),
              dossier(at(THU, 9), at(THU, 10), procedure="1.004873")]
    counts: dict = {}
    for s in states:
        for k in practice_keys(s, judge_reception(s, CAL), None):
            counts[k] = counts.get(k, 0) + 1
    rows = {(r.procedure_code, r.weekday, r.no_appointment_day): r for r in same_day_table(counts, as_of=THU + timedelta(2))}
    thu = rows[("2.000815", 3, True)]
    assert (thu.received, thu.same_day, thu.promised, thu.kept) == (3, 1, 3, 1)
    assert thu.rate == pytest.approx(1 / 3)
    wed = rows[("2.000815", 2, False)]
    assert (wed.received, wed.same_day, wed.promised, wed.kept) == (2, 1, 0, 0)
    assert rows[("1.004873", 3, True)].promised == 0
    assert missed_promises(rows.values()) == {DONG_LOC: 2}
    assert same_day_table(counts, as_of=THU) and not any(r.weekday == 3 for r in same_day_table(counts, as_of=THU))


@pytest.mark.parametrize(("finished", "overdue", "unhappy", "rate", "attainment"), [
    (50, 1, 4, 0.90, 1.0),
    (10, 2, 1, 0.70, 0.70 / 0.90),
    (200, 0, 0, 1.0, 1.0),
    (4, 3, 3, 0.0, 0.0),  # the shares add up beyond 100%: floored
])
def test_satisfaction_formula(finished, overdue, unhappy, rate, attainment):
    counts = {("satisfaction", "2026-11-01", DONG_LOC, "finished"): finished,
              ("satisfaction", "2026-11-01", DONG_LOC, "overdue"): overdue,
              ("satisfaction", "2026-11-01", DONG_LOC, "complaint_or_bad_rating"): unhappy}
    (row,) = satisfaction_table(counts)
    assert row.rate == pytest.approx(rate) and row.attainment() == pytest.approx(attainment)


def test_satisfaction_without_finished_dossiers_has_no_rate():
    assert SatisfactionRow(DONG_LOC, "2026-11-01", 0, 0, 0, 0).rate is None


# --- late data ---------------------------------------------------------------------------


@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=60), st.sampled_from([1, 50, 95, 99, 100]))
def test_nearest_rank_is_the_smallest_value_with_enough_values_at_or_below_it(values, percent):
    ordered = sorted(values)
    got = nearest_rank(ordered, percent)
    enough = ceil(percent * len(values) / 100)
    assert sum(v <= got for v in values) >= enough
    assert all(sum(v <= x for v in values) < enough for x in values if x < got)


def test_late_data_per_commune_and_local_day_of_arrival():
    t = datetime(2026, 11, 5, 1, 0, tzinfo=timezone.utc)  # 08:00 local
    ds = [Delivery(f"e{i}", DONG_LOC, t, t + timedelta(seconds=i), False) for i in range(1, 20)]
    ds.append(Delivery("late", DONG_LOC, t, t + timedelta(hours=5), True))  # 13:00 local, same day
    ds.append(Delivery("late", DONG_LOC, t, t + timedelta(hours=6), True))  # a second copy: the first counts
    ds.append(Delivery("ahead", DONG_LOC, t, t - timedelta(seconds=30)))  # the source clock is fast
    ds.append(Delivery("night", DONG_LOC, t, datetime(2026, 11, 5, 17, 30, tzinfo=timezone.utc)))  # 00:30 on the 6th
    first, second = late_data(ds)
    assert (first.day, first.events, first.spooled, first.ahead) == (date(2026, 11, 5), 21, 1, 1)
    # 21 delays: 0 (ahead), 1..19 s, 5 h. p50 = the 11th = 10 s; p95 = the 20th = 19 s; max = 5 h.
    assert (first.p50_ms, first.p95_ms, first.max_ms) == (10_000, 19_000, 5 * 3600_000)
    assert first.spooled_share == pytest.approx(1 / 21)
    assert (second.day, second.events, second.max_ms) == (date(2026, 11, 6), 1, int(16.5 * 3600_000))


@pytest.mark.parametrize(("ts", "headers", "arrived", "spooled"), [
    (1_700_000_000_000, None, datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc), False),
    (1_700_000_000_000, [("onestop-spooled", b"1")], datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc), True),
    (1_700_000_000_000, delivery_headers(datetime(2026, 11, 5, 8, 0, tzinfo=VN_TZ), spooled=True),
     datetime(2026, 11, 5, 1, 0, tzinfo=timezone.utc), True),
    (1_700_000_000_000, [("onestop-simulated-arrival", b"not a time")],
     datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc), False),
    (None, [("other", None)], None, False),
])
def test_arrival_from_record_timestamp_and_headers(ts, headers, arrived, spooled):
    assert arrival(ts, headers) == (arrived, spooled)
