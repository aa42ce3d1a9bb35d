"""Accepted means storable: any event the contract's decoder accepts fits every place it goes.

Hypothesis writes JSON events whose fields range over valid values, the edges
of the contract's bounds and values far outside them. Whenever the decoder
accepts one, it must:

- give a ``dossier_events`` row whose every value fits its ClickHouse column;
- fold into a dossier state that the worker can store (msgpack, within the
  size a state record may take) and read back unchanged;
- run through the real worker logic (folded into an open dossier, judged,
  its deadlines fired, its counters published) into alerts, counter batches
  and dead letters whose rows all fit their columns too.

The column check itself is compared with chDB in
tests/integration/test_clickhouse_store.py.
"""

import json
from datetime import date, datetime, timedelta, timezone

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from onestop import dlq, events
from onestop.admission import AdmissionRules
from onestop.catalogue import default_catalogue
from onestop.events import EARLIEST, LATEST, EventType
from onestop.fold import apply
from onestop.workcal import default_calendar
from sinks.columns import row_problem
from sinks.rows import COLUMNS, alert_rows, counter_rows, dead_letter_rows, event_rows
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import (STATE_TOO_LARGE, STATE_UNENCODABLE, StoredDossier, decode_stored, encode_alert,
                           encode_stored, storage_problem)
from streams.processor import Processor

CODES = default_catalogue().codes()
ANY_CHAR = st.characters(codec=None, categories=None)  # every code point, control characters and surrogates too


def _instant(value: datetime) -> str:
    return value.isoformat()


OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
INSTANTS = st.one_of(
    st.datetimes(min_value=datetime(2025, 7, 1), max_value=datetime(2027, 1, 1), timezones=OFFSETS),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS),
    st.sampled_from([EARLIEST, LATEST, EARLIEST - timedelta(milliseconds=1), LATEST + timedelta(milliseconds=1),
                     datetime(1971, 1, 1, 6, 59, tzinfo=timezone(timedelta(hours=7)))]),
).map(_instant)
TEXTS = st.one_of(st.text(ANY_CHAR, max_size=30), st.text(max_size=2000),
                  st.integers(1990, 2010).map(lambda n: "ư" * n), st.text(ANY_CHAR, min_size=120, max_size=140))
FIELDS = {
    "event_id": st.one_of(st.uuids().map(str), TEXTS),
    "event_type": st.one_of(st.sampled_from([t.value for t in EventType]), st.text(max_size=5)),
    "dossier_id": st.one_of(st.from_regex(r"[A-Z0-9.\-]{1,128}", fullmatch=True), TEXTS),
    "seq": st.one_of(st.integers(1, 12), st.sampled_from([0, 2**32 - 1, 2**32, 2**63, 2**64, 10**30, -1]),
                     st.integers(-(2**80), 2**80)),
    "occurred_at": INSTANTS,
    "due_at": st.one_of(st.none(), INSTANTS),
    "commune_code": st.one_of(st.sampled_from(["18073", "03595", "18754"]), st.text(max_size=6)),
    "handling_commune_code": st.one_of(st.none(), st.sampled_from(["18100", "1810"])),
    "procedure_code": st.one_of(st.sampled_from(CODES), TEXTS),
    "channel": st.integers(0, 4),
    "step": st.one_of(st.none(), TEXTS),
    "reason": st.one_of(st.none(), TEXTS),
    "source": st.one_of(st.sampled_from(["gateway:18073", "importer:a b.csv:3", "simulator"]), TEXTS),
    "procedure_version": st.one_of(st.none(), TEXTS),
    "calendar_version": st.one_of(st.none(), TEXTS),
}
VALID = {
    "event_id": st.uuids().map(str), "event_type": st.sampled_from([t.value for t in EventType]),
    "dossier_id": st.from_regex(r"[A-Z0-9.\-]{1,40}", fullmatch=True), "seq": st.integers(1, 5),
    "occurred_at": st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 1),
                                timezones=OFFSETS).map(_instant),
    "commune_code": st.just("18073"), "procedure_code": st.sampled_from(CODES), "channel": st.integers(1, 3),
    "due_at": st.one_of(st.none(), st.datetimes(min_value=datetime(2026, 12, 1), max_value=datetime(2027, 1, 1),
                                                timezones=OFFSETS).map(_instant)),
    "handling_commune_code": st.none(), "step": st.one_of(st.none(), st.text(max_size=40)),
    "reason": st.one_of(st.none(), st.text(max_size=40)), "source": st.just("gateway:18073"),
    "procedure_version": st.none(), "calendar_version": st.none(),
}


@st.composite
def event_texts(draw) -> bytes:
    """Mostly believable events with a few fields drawn from anywhere (so the decoder accepts many)."""
    wild = set(draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=2)))
    body = {}
    for name, anything in FIELDS.items():
        strategy = anything if name in wild else VALID[name]
        value = draw(strategy)
        if value is not None:
            body[name] = value
    if body.get("event_type") in ("accepted", "extended", "due_date_corrected") and "due_at" not in body:
        body["due_at"] = draw(INSTANTS)
    return json.dumps(body).encode()


# Admission that lets every decoded event through: the property is about the contract alone.
EVERYTHING = AdmissionRules(None, future_margin=timedelta(days=360), floor=date(1, 1, 3), import_floor=date(1, 1, 3))
FAR_WALL = datetime(9999, 1, 1, tzinfo=timezone.utc)  # with the margin: later than any datetime the decoder reads
# The event of the original report (seq beyond 64 bits), and one dated in year 1.
KNOWN = [
    b'{"event_id": "e", "event_type": "submitted", "dossier_id": "d", "seq": 1000000000000000000000000000000, '
    b'"occurred_at": "2026-11-02T09:36:48+07:00", "commune_code": "18073", "procedure_code": "1.001193", "channel": 2}',
    b'{"event_id": "e", "event_type": "accepted", "dossier_id": "d", "seq": 1, "occurred_at": "0001-01-05T00:00:00Z", '
    b'"due_at": "0001-01-09T00:00:00Z", "commune_code": "18073", "procedure_code": "1.001193", "channel": 2}',
]


def decoded(raw: bytes) -> events.DossierEvent | None:
    try:
        return events.decode(raw)
    except events.ContractError:
        return None


def assert_rows_fit(tables: dict) -> None:
    for table, rows in tables.items():
        for row in rows:
            assert row_problem(table, COLUMNS[table], row) is None


def assert_storable(stored: StoredDossier) -> None:
    assert storage_problem(stored) is None
    assert decode_stored(encode_stored(stored)) == stored


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_texts())
@example(KNOWN[0])
@example(KNOWN[1])
def test_an_accepted_event_gives_a_row_that_fits_and_a_state_that_stores(raw):
    event = decoded(raw)
    if event is None:
        return
    assert_rows_fit(event_rows(raw, 11, 2**40))
    state = apply(None, event).state  # applied, rejected, or waiting for its seq in the state
    assert_storable(StoredDossier(partition=11, state=state, field="Hộ tịch", judged_due_at=event.due_at))


# --- through the worker's own logic ----------------------------------------------------------

EVALUATOR = Evaluator(default_calendar(), default_catalogue())


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def opening(event: events.DossierEvent) -> bytes:
    """An accepted seq 1 of the same dossier, at the event's time, due a few days later (within bounds)."""
    due = min(event.occurred_at + timedelta(days=3), LATEST)
    return events.encode(events.DossierEvent(
        event_id=f"open-{event.event_id}"[:128], event_type=EventType.ACCEPTED, dossier_id=event.dossier_id, seq=1,
        occurred_at=event.occurred_at, due_at=due, commune_code=event.commune_code,
        procedure_code=event.procedure_code, channel=event.channel))


def later(event: events.DossierEvent, days: int) -> bytes:
    """Another dossier's event that moves the partition's clock ``days`` later (within bounds)."""
    return events.encode(events.DossierEvent(
        event_id=f"clock-{days}", event_type=EventType.SUBMITTED, dossier_id=f"CLOCK-{days}", seq=1,
        occurred_at=min(event.occurred_at + timedelta(days=days), LATEST), commune_code="18073",
        procedure_code="1.001193", channel=1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_texts())
@example(KNOWN[0])
@example(KNOWN[1])
def test_the_worker_turns_an_accepted_event_into_states_alerts_and_counters_that_all_fit(raw):
    event = decoded(raw)
    if event is None:
        return
    proc = Processor(EVALUATOR, Clock("event", wall=lambda: FAR_WALL, quorum=1), admission=EVERYTHING)
    store, out = DictStore(), []
    records = [raw, opening(event), raw, later(event, 2), later(event, 9), later(event, 40)]
    for offset, record in enumerate(records):
        out.append(proc.on_event(7, offset, record, store))
    for value in store.values():
        assert_storable(decode_stored(value))
    for fx in out:
        # The worker's last guard (a state it could not store) never has to act on what the decoder accepts.
        assert not [d for d in fx.dead_letters if d.reason_code in (STATE_UNENCODABLE, STATE_TOO_LARGE)]
        for alert in fx.alerts:
            assert_rows_fit(alert_rows(encode_alert(alert), 0, 0))
        for letter in fx.dead_letters:
            assert_rows_fit(dead_letter_rows(dlq.encode(letter), 0, 0))
    as_of = {7: proc.clock.now(7)}
    for batch in proc.counters.drain(as_of):
        assert_rows_fit(counter_rows(msgspec.json.encode(batch), 0, 0))
