"""The pure parts of reconcile: periods, events read back from their stored row, and the comparison."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from onestop.events import Channel, DossierEvent, EventType, Rating, ReceptionPoint
from onestop.workcal import VN_TZ
from ops.reconcile import VIEWS, Difference, Period, _in_period, differences, event_of_row, parse_period
from sinks.arrow_rows import arrow_table
from sinks.rows import COLUMNS, EVENT_COLUMNS, event_row

AT = datetime(2026, 11, 2, 2, 30, tzinfo=timezone.utc)


def test_a_month_a_day_and_a_quarter_run_from_local_midnight_to_local_midnight():
    month = parse_period("2026-10")
    assert (month.since, month.until) == (datetime(2026, 10, 1, tzinfo=VN_TZ), datetime(2026, 11, 1, tzinfo=VN_TZ))
    day = parse_period("2026-10-05")
    assert (day.since, day.until) == (datetime(2026, 10, 5, tzinfo=VN_TZ), datetime(2026, 10, 6, tzinfo=VN_TZ))
    assert parse_period("2026-Q4").until == datetime(2027, 1, 1, tzinfo=VN_TZ)
    for bad in ("2026-13", "2026-02-30", "October"):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_a_row_is_in_the_period_when_its_bucket_or_day_starts_in_it():
    throughput, ontime = VIEWS[1], VIEWS[2]
    day = parse_period("2026-10-05")
    # The day bucket of 5 October starts at 4 October 17:00 UTC; a minute at 16:59 UTC belongs to the 4th.
    assert _in_period(throughput, datetime(2026, 10, 4, 17, 0, tzinfo=timezone.utc), day)
    assert not _in_period(throughput, datetime(2026, 10, 4, 16, 59, tzinfo=timezone.utc), day)
    assert _in_period(ontime, date(2026, 10, 5), day) and not _in_period(ontime, date(2026, 10, 1), day)
    # An instant that is not a local midnight: the first whole day after it.
    part = Period(datetime(2026, 10, 5, 8, 0, tzinfo=VN_TZ), datetime(2026, 10, 7, 0, 0, tzinfo=VN_TZ))
    assert [d for d in (5, 6, 7) if _in_period(ontime, date(2026, 10, d), part)] == [6]
    assert _in_period(VIEWS[0], None, day)  # the backlog: always


EVENTS = [
    DossierEvent(event_id="e1", event_type=EventType.SUBMITTED, dossier_id="D1", seq=1, occurred_at=AT,
                 commune_code="18073", procedure_code="2.000720", channel=Channel.ONLINE, source="gateway",
                 reception_point=ReceptionPoint.ONLINE, beneficiary_group="người có công"),
    DossierEvent(event_id="e2", event_type=EventType.ACCEPTED, dossier_id="D1", seq=2, occurred_at=AT,
                 commune_code="18073", procedure_code="2.000720", channel=Channel.ONLINE, due_at=AT,
                 handling_commune_code="18076", source="gateway"),
    DossierEvent(event_id="e3", event_type=EventType.RATED, dossier_id="D1", seq=5, occurred_at=AT,
                 commune_code="18073", procedure_code="2.000720", channel=Channel.IN_PERSON, step="quầy",
                 reason="x", rating=Rating(score=2, complaint=True, via="online"), source="simulator"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event_type.value)
def test_an_event_reads_back_from_its_stored_row(event):
    row = dict(zip(EVENT_COLUMNS, event_row(event, 3, 17)))
    assert event_of_row(row) == event


def test_a_named_receiving_commune_reads_back_as_naming_none():
    named = DossierEvent(event_id="e9", event_type=EventType.STEP_ASSIGNED, dossier_id="D1", seq=3, occurred_at=AT,
                         commune_code="18073", procedure_code="2.000720", channel=Channel.ONLINE, step="x",
                         handling_commune_code="18073", source="gateway")
    assert event_of_row(dict(zip(EVENT_COLUMNS, event_row(named, 0, 0)))).handling_commune_code is None


def test_every_key_that_differs_is_named_with_both_counts():
    stream = {"backlog_now": {("a",): 3, ("b",): 1}, "throughput": {("t",): 2}}
    recomputed = {"backlog_now": {("a",): 3, ("c",): 4}, "throughput": {("t",): 5}}
    got = differences(stream, recomputed)
    backlog_key = VIEWS[0].keys[0]
    assert got == [Difference("backlog_now", ((backlog_key, "b"),), 1, 0),
                   Difference("backlog_now", ((backlog_key, "c"),), 0, 4),
                   Difference("throughput", ((VIEWS[1].keys[0], "t"),), 2, 5)]


def test_rows_whose_values_do_not_fit_are_set_apart_and_the_rest_kept():
    columns = COLUMNS["dossier_events"]
    good = event_row(EVENTS[0], 1, 5)
    too_big = event_row(EVENTS[1], 70_000, 6)  # kafka_partition is a UInt16
    table, refused = arrow_table("dossier_events", columns, [good, too_big, good])
    assert refused == [1] and table.num_rows == 2
    assert table.column("kafka_offset").to_pylist() == [5, 5]
    table, refused = arrow_table("dossier_events", columns, [good])
    assert refused == [] and table.column("occurred_at").to_pylist()[0] == AT


def test_times_are_floored_to_the_millisecond_and_dates_kept_as_days():
    columns = COLUMNS["ontime_partition"]  # granularity, period_start (Date), …, n, source_partition, version
    row = ["d", date(2026, 10, 5), "18073", "2.000720", "Hộ tịch", "on_due", 3, 1, 7]
    table, refused = arrow_table("ontime_partition", columns, [row])
    assert refused == [] and table.column("period_start").to_pylist() == [date(2026, 10, 5)]
    alert = ["a1", "overdue", "D1", "18073", "18073", "2.000720", "Hộ tịch", None,
             datetime(2026, 11, 2, 1, 2, 3, 456789), datetime(2026, 11, 2, 1, 2, 3, 999999, tzinfo=VN_TZ),
             "event", "due passed", None]
    too_early = [*alert[:9], datetime(1899, 12, 31, tzinfo=timezone.utc), *alert[10:]]
    table, refused = arrow_table("alerts", COLUMNS["alerts"], [alert, too_early])
    assert refused == [1]
    assert table.column("original_due_at").to_pylist() == [datetime(2026, 11, 2, 1, 2, 3, 456000, tzinfo=timezone.utc)]
    assert table.column("fired_at").to_pylist() == [datetime(2026, 11, 1, 18, 2, 3, 999000, tzinfo=timezone.utc)]
