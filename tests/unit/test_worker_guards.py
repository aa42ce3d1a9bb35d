"""The worker re-checks what it reads, never lets one event poison a dossier, and bounds its event clock.

Dates as in test_processor.py: 2.000720 accepted Monday 2 Nov 2026 09:00 is due
Thursday 5 Nov 17:00, due soon from Wednesday 17:00 and overdue from Friday.
"""

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.settings import Settings
from onestop.workcal import default_calendar
from streams.app import build_processor
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored
from streams.processor import Processor

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ACCEPTED = datetime(2026, 11, 2, 9, 0, tzinfo=VN)
DUE = datetime(2026, 11, 5, 17, 0, tzinfo=VN)
WALL = datetime(2026, 12, 3, 9, 0, tzinfo=VN)  # the worker's wall clock in these tests


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def ev(dossier: str, seq: int, kind: EventType, at: datetime, **kw) -> bytes:
    return events.encode(DossierEvent(
        event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=at,
        commune_code="18073", procedure_code=kw.pop("procedure_code", "2.000720"), channel=Channel.IN_PERSON, **kw))


def raw_event(**fields) -> bytes:
    """JSON as an old producer may have written it: no bound checked on the way in."""
    body = {"event_id": "H-1", "event_type": "submitted", "dossier_id": "H", "seq": 1,
            "occurred_at": "2026-11-02T08:00:00+07:00", "commune_code": "18073", "procedure_code": "2.000720",
            "channel": 1, **fields}
    return json.dumps(body).encode()


def processor(quorum: int = 1, **kw) -> Processor:
    clock = Clock("event", allowed_lateness=timedelta(0), wall=lambda: WALL, quorum=quorum)
    return Processor(Evaluator(default_calendar(), default_catalogue()), clock, **kw)


def feed(proc: Processor, store: DictStore, records: list[bytes], received_at: datetime | None = None):
    alerts, dead = [], []
    for offset, raw in enumerate(records):
        fx = proc.on_event(0, offset, raw, store, received_at=received_at)
        alerts += fx.alerts
        dead += fx.dead_letters
    return alerts, dead


# --- one event never poisons a dossier -------------------------------------------------------


def test_a_huge_seq_is_dead_lettered_and_the_dossiers_next_valid_event_applies():
    proc, store = processor(), DictStore()
    huge = raw_event(seq=10**30, event_id="H-huge")
    _, dead = feed(proc, store, [huge, raw_event(), raw_event(event_id="H-2", seq=2, event_type="accepted",
                                                              occurred_at="2026-11-02T09:00:00+07:00",
                                                              due_at="2026-11-05T17:00:00+07:00")])
    assert [(d.reason_code, d.original) for d in dead] == [("invalid_field", huge)]
    stored = decode_stored(store[b"H"])
    assert (stored.state.last_seq, stored.state.status, stored.state.pending) == (2, 2, ())


def test_an_event_that_would_make_the_state_too_large_is_refused_and_the_dossier_goes_on():
    proc, store = processor(max_state_bytes=20_000), DictStore()
    accepted = ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE)
    # Events far ahead of a missing seq wait in the state; each carries a long reason.
    waiting = [ev("A", seq, EventType.STEP_COMPLETED, ACCEPTED + timedelta(hours=1), reason="x" * 1900)
               for seq in range(3, 40)]
    _, dead = feed(proc, store, [accepted, *waiting])
    refused = [d for d in dead if d.reason_code == "state_too_large"]
    assert refused and len(store[b"A"]) <= 20_000
    kept = decode_stored(store[b"A"]).state
    assert len(kept.pending) == len(waiting) - len(refused)
    # The missing event arrives: the dossier applies it and the events it was waiting for.
    _, dead = feed(proc, store, [ev("A", 2, EventType.STEP_ASSIGNED, ACCEPTED + timedelta(minutes=30))])
    state = decode_stored(store[b"A"]).state
    assert dead == [] and state.last_seq == 2 + len(kept.pending) and state.pending == ()


# --- records already in Kafka meet the entrance rules again -----------------------------------


@pytest.mark.parametrize(("fields", "code"), [
    ({"occurred_at": "2099-01-01T00:00:00+07:00"}, "occurred_in_future"),
    ({"occurred_at": "1990-01-01T00:00:00+07:00"}, "occurred_before_floor"),
    ({"procedure_code": "9.999999"}, "unknown_procedure"),
    ({"dossier_id": "H\u0000X"}, "invalid_field"),
    ({"event_type": "accepted", "due_at": "2026-11-01T17:00:00+07:00"}, "due_before_acceptance"),
])
def test_a_record_the_entrances_would_refuse_is_dead_lettered_by_the_worker(fields, code):
    proc, store = processor(), DictStore()
    _, dead = feed(proc, store, [raw_event(**fields)])
    assert [d.reason_code for d in dead] == [code] and store == {}
    assert proc.clock.watermark(0) is None  # a refused record does not move the clock either


def test_occurred_at_is_judged_against_the_records_timestamp_so_a_replay_judges_the_same():
    proc, store = processor(), DictStore()
    sent = datetime(2026, 11, 2, 8, 0, tzinfo=VN)
    ahead = raw_event(occurred_at="2026-11-02T08:10:00+07:00")  # 10 minutes after Kafka took it
    _, dead = feed(proc, store, [ahead], received_at=sent)
    assert [d.reason_code for d in dead] == ["occurred_in_future"]  # although the wall clock is weeks later
    _, dead = feed(proc, store, [raw_event(occurred_at="2026-11-02T08:04:00+07:00")], received_at=sent)
    assert dead == [] and b"H" in store


def test_a_record_timestamp_later_than_the_wall_clock_counts_as_the_wall_clock():
    proc, store = processor(), DictStore()
    lie = WALL + timedelta(days=365)
    _, dead = feed(proc, store, [raw_event(occurred_at=(WALL + timedelta(days=300)).isoformat())], received_at=lie)
    assert [d.reason_code for d in dead] == ["occurred_in_future"]


# --- the event clock: one outlier does not move a watermark -----------------------------------


def first_week(proc: Processor, store: DictStore, outlier: datetime) -> tuple[list, dict]:
    """Dossier A accepted Monday; other dossiers move the clock through Monday and Tuesday; one outlier."""
    records = [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE)]
    records += [ev(f"C{n}", 1, EventType.SUBMITTED, ACCEPTED + timedelta(hours=n)) for n in range(1, 6)]
    records += [ev("X", 1, EventType.SUBMITTED, outlier)]
    records += [ev(f"D{n}", 1, EventType.SUBMITTED, ACCEPTED + timedelta(hours=24 + n)) for n in range(1, 4)]
    alerts, _ = feed(proc, store, records)
    return alerts, proc.counters.totals("backlog", 5)


def test_a_single_far_future_event_neither_makes_dossiers_overdue_nor_fires_alerts():
    proc, store = build_processor(Settings(clock="event", allowed_lateness_s=0)), DictStore()
    proc.clock._wall = lambda: WALL
    outlier = datetime(2026, 12, 1, 9, 0, tzinfo=VN)  # plausible for the wall clock, a month ahead of the log
    alerts, backlog = first_week(proc, store, outlier)
    assert alerts == [] and backlog == {"within_due": 1}
    # The third-latest instant seen (D2; the outlier is one of the three), not the outlier.
    assert proc.clock.now(0) == ACCEPTED + timedelta(hours=26)
    assert decode_stored(store[b"A"]).sla == "within_due"


def test_without_a_quorum_the_same_outlier_would_make_the_dossier_overdue():
    """The scenario above is strong enough to fail: with a watermark of one event it does."""
    proc, store = processor(quorum=1), DictStore()
    alerts, backlog = first_week(proc, store, datetime(2026, 12, 1, 9, 0, tzinfo=VN))
    assert {a.kind for a in alerts} & {"overdue", "escalation"} and backlog.get("overdue") == 1


def test_the_watermark_is_the_quorum_th_latest_instant_seen():
    clock = Clock("event", allowed_lateness=timedelta(minutes=5), quorum=3)
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
    clock.observe(0, t0)
    clock.observe(0, t0 + timedelta(hours=1))
    assert clock.now(0) is None  # fewer than three events: no watermark yet
    clock.observe(0, t0 + timedelta(days=400))
    assert clock.now(0) == t0 - timedelta(minutes=5)
    clock.observe(0, t0 + timedelta(days=500))
    assert clock.now(0) == t0 + timedelta(hours=1) - timedelta(minutes=5)  # two outliers: still bounded
    for h in (2, 3, 4):
        clock.observe(0, t0 + timedelta(hours=h))
    assert clock.watermark(0) == t0 + timedelta(hours=4)
    assert clock.watermark(1) is None


def test_the_quorum_applies_to_the_clock_restored_from_stored_dossiers():
    clock = Clock("event", allowed_lateness=timedelta(0), quorum=2)
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
    for at in (t0, t0 + timedelta(hours=1), datetime(2099, 1, 1, tzinfo=timezone.utc)):
        clock.seed(3, at)
    assert clock.now(3) == t0 + timedelta(hours=1)
