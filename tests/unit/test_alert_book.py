"""The router's book: from dossier.alerts records to what Alertmanager must hold, without servers.

Working days are counted by hand on the real calendar: due Friday 13 Nov 2026; Monday 16 and
Tuesday 17 Nov are working days, Tuesday 24 Nov 2026 is Vietnam Cultural Day (a holiday).
"""

from datetime import datetime, timedelta, timezone

from onestop.catalogue import default_catalogue
from onestop.workcal import VN_TZ, WorkCalendar
from sinks.alert_book import AlertBook, Posting
from sinks.alert_messages import parse_escalation
from streams.model import Alert

HOLD = timedelta(minutes=15)
DUE = datetime(2026, 11, 13, 17, 0, tzinfo=VN_TZ)


def book() -> AlertBook:
    return AlertBook(parse_escalation("officer=0,commune_leaders=1,province=3"), WorkCalendar(),
                     default_catalogue(), "42", HOLD)


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def alert(kind: str, alert_id: str, dossier: str = "D1", commune: str = "18754", clears: str | None = None,
          fired_at: datetime = vn(2026, 11, 14, 0, 1)) -> Alert:
    return Alert(alert_id=alert_id, kind=kind, dossier_id=dossier, commune_code=commune,
                 receiving_commune_code=commune, procedure_code="1.001193", field="Hộ tịch", due_at=DUE,
                 original_due_at=DUE, fired_at=fired_at, clock="wall", clears=clears)


def shape(postings: list[Posting], now: datetime) -> set[tuple[str, str, str, bool]]:
    """(dossier, alertname, step, ended) of each posting."""
    return {(p.labels["dossier_id"], p.labels["alertname"], p.labels["escalation"], p.ends(now)) for p in postings}


def post(b: AlertBook, now: datetime, postings: list[Posting] | None = None) -> list[Posting]:
    """What the router does: post the changes and tell the book Alertmanager took them."""
    postings = b.changes(now) if postings is None else postings
    b.accepted(postings, now)
    return postings


def test_a_due_soon_alert_goes_to_the_officer_and_holds_for_the_hold_time():
    b, now = book(), vn(2026, 11, 13, 9)
    b.fold(alert("due_soon", "s1"))
    [p] = post(b, now)
    assert shape([p], now) == {("D1", "DossierDueSoon", "officer", False)}
    assert p.endsAt == (now + HOLD).astimezone(timezone.utc)


def test_overdue_two_working_days_reaches_the_commune_leaders_but_not_the_province():
    b, now = book(), vn(2026, 11, 17, 10)
    b.fold(alert("overdue", "o1"))
    assert shape(post(b, now), now) == {("D1", "DossierOverdue", "officer", False),
                                        ("D1", "DossierOverdue", "commune_leaders", False)}


def test_the_province_step_is_added_on_the_third_working_day_skipping_the_holiday():
    b = book()
    b.fold(alert("overdue", "o1"))
    post(b, vn(2026, 11, 17, 10))
    # 18, 19 Nov: days 3 and 4 → the province; a refresh adds it and keeps the others firing.
    now = vn(2026, 11, 18, 8)
    assert shape(b.refresh(now), now) == {("D1", "DossierOverdue", step, False)
                                          for step in ("officer", "commune_leaders", "province")}
    assert b.working_days_overdue(alert("overdue", "o1"), vn(2026, 11, 24, 10)) == 6  # 16-20 and 23; not 24


def test_going_overdue_ends_the_due_soon_alert_it_replaces():
    b = book()
    b.fold(alert("due_soon", "s1"))
    post(b, vn(2026, 11, 13, 9))
    b.fold(alert("overdue", "o1"))
    now = vn(2026, 11, 14, 0, 1)  # Saturday: 0 working days overdue, the officer only
    assert shape(post(b, now), now) == {("D1", "DossierDueSoon", "officer", True),
                                        ("D1", "DossierOverdue", "officer", False)}


def test_a_clear_ends_every_step_that_was_posted_and_nothing_else():
    b = book()
    b.fold(alert("overdue", "o1"))
    post(b, vn(2026, 11, 16, 10))  # officer and commune leaders
    b.fold(alert("cleared", "c1", clears="o1"))
    now = vn(2026, 11, 18, 9)  # by now the province step would be due, but it was never posted
    assert shape(post(b, now), now) == {("D1", "DossierOverdue", "officer", True),
                                        ("D1", "DossierOverdue", "commune_leaders", True)}
    assert not b.active and not b.posted and b.refresh(now) == []


def test_an_alert_cleared_before_it_was_posted_is_never_posted():
    b, now = book(), vn(2026, 11, 16, 10)
    b.fold(alert("overdue", "o1"))
    b.fold(alert("cleared", "c1", clears="o1"))
    assert post(b, now) == []


def test_a_clear_of_another_alert_leaves_the_active_one():
    b = book()
    b.fold(alert("overdue", "o2"))
    b.fold(alert("cleared", "c1", clears="o1"))
    assert b.active["D1"].alert_id == "o2"


def test_a_redelivered_alert_changes_nothing():
    b, now = book(), vn(2026, 11, 16, 10)
    b.fold(alert("overdue", "o1"))
    post(b, now)
    b.fold(alert("overdue", "o1"))
    assert b.changes(now) == []


def test_an_escalation_record_keeps_the_same_alerts_and_their_start():
    b = book()
    b.fold(alert("overdue", "o1"))
    first = {p.key: p.startsAt for p in post(b, vn(2026, 11, 16, 10))}
    b.fold(alert("escalation", "e1", fired_at=vn(2026, 11, 18, 0, 1)))
    now = vn(2026, 11, 18, 0, 5)
    again = post(b, now)
    assert not any(p.ends(now) for p in again)
    assert {p.key: p.startsAt for p in again if p.key in first} == first
    assert again[0].annotations["alert_id"] == "e1"


def test_refresh_moves_ends_ahead_for_every_active_alert():
    b = book()
    b.fold(alert("due_soon", "s1", dossier="D1"))
    b.fold(alert("due_soon", "s2", dossier="D2", commune="18073"))
    post(b, vn(2026, 11, 13, 9))
    later = vn(2026, 11, 13, 9, 1)
    assert {p.endsAt for p in b.refresh(later)} == {(later + HOLD).astimezone(timezone.utc)}


def test_an_event_clock_alert_is_judged_no_earlier_than_it_was_decided():
    b = book()
    decided_later = alert("overdue", "o1", fired_at=vn(2026, 11, 17, 10))
    assert b.working_days_overdue(decided_later, vn(2026, 11, 14, 9)) == 2


def test_adopting_alertmanager_ends_what_the_book_no_longer_has_and_keeps_starts():
    b, now = book(), vn(2026, 11, 16, 10)
    b.fold(alert("overdue", "o1"))
    held = b.wanted("D1", now)
    started = vn(2026, 11, 14, 0, 2).astimezone(timezone.utc)
    in_am = [Posting(p.labels, p.annotations, started, p.endsAt) for p in held]
    gone = Posting({**held[0].labels, "dossier_id": "D9"}, {}, started, held[0].endsAt)
    ends = b.adopt([*in_am, gone, Posting({"alertname": "OnestopSinkDown"}, {}, started, held[0].endsAt)], now)
    assert shape(ends, now) == {("D9", "DossierOverdue", "officer", True)}
    assert {p.startsAt for p in b.refresh(now)} == {started}
    assert b.changes(now) and all(p.key in {q.key for q in in_am} for p in b.changes(now))
