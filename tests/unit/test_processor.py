"""The worker's per-record logic, without Faust or Kafka.

Dates are real: 2.000720 (household-business change) has a legal time of 3
working days, so a dossier accepted Monday 2 Nov 2026 09:00 is due Thursday
5 Nov 17:00. With the default horizon of one working day (8 working hours,
office sessions 07:30–11:30 and 13:00–17:00) it is due soon once only one
working day is left, from Wednesday 17:00, and overdue from Friday 6 Nov
(dates are compared in Asia/Ho_Chi_Minh).
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.workcal import default_calendar
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored
from streams.processor import Processor

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ACCEPTED = datetime(2026, 11, 2, 9, 0, tzinfo=VN)
DUE = datetime(2026, 11, 5, 17, 0, tzinfo=VN)
PROC = "2.000720"


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def ev(dossier: str, seq: int, kind: EventType, at: datetime, **kw) -> bytes:
    return events.encode(DossierEvent(
        event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=at,
        commune_code="18073", procedure_code=PROC, channel=Channel.IN_PERSON, **kw))


def clock_event(at: datetime, n: int) -> bytes:
    """An unrelated dossier's submission: it only moves the partition's event clock."""
    return ev(f"CLOCK-{n}", 1, EventType.SUBMITTED, at)


def processor(mode: str = "event", **clock_kw) -> Processor:
    clock = Clock(mode, allowed_lateness=timedelta(0), **clock_kw)
    return Processor(Evaluator(default_calendar(), default_catalogue(), escalate_after_working_days=2), clock)


def feed(proc: Processor, store: DictStore, records: list[bytes], partition: int = 0):
    alerts, dead = [], []
    for offset, raw in enumerate(records):
        fx = proc.on_event(partition, offset, raw, store)
        alerts += fx.alerts
        dead += fx.dead_letters
    return alerts, dead


def backlog_by_sla(proc: Processor) -> dict:
    return proc.counters.totals("backlog", 5)


def test_accepted_dossier_is_in_the_backlog_within_due():
    proc, store = processor(), DictStore()
    feed(proc, store, [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE)])
    assert backlog_by_sla(proc) == {"within_due": 1}


def test_due_soon_then_overdue_alerts_fire_once_each_at_the_legal_instants():
    proc, store = processor(), DictStore()
    records = [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE)]
    # The event clock reaches Wed 16:59 (not yet due soon), then Wed 17:01, then Fri 00:01.
    records += [clock_event(datetime(2026, 11, 4, 16, 59, tzinfo=VN), 1)]
    alerts, _ = feed(proc, store, records)
    assert alerts == [] and backlog_by_sla(proc) == {"within_due": 1}
    alerts, _ = feed(proc, store, [clock_event(datetime(2026, 11, 4, 17, 1, tzinfo=VN), 2)])
    assert [a.kind for a in alerts] == ["due_soon"] and backlog_by_sla(proc) == {"due_soon": 1}
    alerts, _ = feed(proc, store, [clock_event(datetime(2026, 11, 5, 16, 0, tzinfo=VN), 3)])
    assert alerts == []  # still 5 Nov: not overdue, and due-soon is not repeated
    alerts, _ = feed(proc, store, [clock_event(datetime(2026, 11, 6, 0, 1, tzinfo=VN), 4)])
    assert [a.kind for a in alerts] == ["overdue"] and backlog_by_sla(proc) == {"overdue": 1}


def test_escalation_after_the_configured_working_days_overdue():
    proc, store = processor(), DictStore()
    feed(proc, store, [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE)])
    # Due Thu 5 Nov; two working days later is Mon 9 Nov (Sat/Sun do not count).
    alerts, _ = feed(proc, store, [clock_event(datetime(2026, 11, 8, 23, 0, tzinfo=VN), 1)])
    assert "escalation" not in [a.kind for a in alerts]
    alerts, _ = feed(proc, store, [clock_event(datetime(2026, 11, 9, 0, 30, tzinfo=VN), 2)])
    assert [a.kind for a in alerts] == ["escalation"]


def test_result_ready_clears_the_overdue_alert_and_counts_the_dossier_late():
    proc, store = processor(), DictStore()
    feed(proc, store, [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
                       clock_event(datetime(2026, 11, 6, 8, 0, tzinfo=VN), 1)])
    alerts, _ = feed(proc, store, [ev("A", 2, EventType.RESULT_READY, datetime(2026, 11, 6, 9, 0, tzinfo=VN))])
    assert [a.kind for a in alerts] == ["cleared"]
    overdue_id = decode_stored(store[b"A"]).alerts[-2]
    assert alerts[0].clears == overdue_id
    assert backlog_by_sla(proc) == {}
    assert proc.counters.totals("ontime", 6) == {"overdue": 2}  # one day row and one month row


def test_an_extension_clears_the_alert_and_moves_the_dossier_back_within_due():
    proc, store = processor(), DictStore()
    feed(proc, store, [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
                       clock_event(datetime(2026, 11, 5, 8, 0, tzinfo=VN), 1)])
    new_due = datetime(2026, 11, 12, 17, 0, tzinfo=VN)
    alerts, _ = feed(proc, store, [ev("A", 2, EventType.EXTENDED, datetime(2026, 11, 5, 8, 30, tzinfo=VN),
                                      due_at=new_due, reason="xin lỗi, gia hạn")])
    assert [a.kind for a in alerts] == ["cleared"]
    assert backlog_by_sla(proc) == {"within_due": 1}


def test_a_redelivered_event_changes_nothing_and_fires_nothing():
    proc, store = processor(), DictStore()
    records = [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
               clock_event(datetime(2026, 11, 5, 8, 0, tzinfo=VN), 1)]
    first, _ = feed(proc, store, records)
    counts = {p: dict(c) for p, c in proc.counters.counts.items()}
    again, _ = feed(proc, store, records)
    assert [a.kind for a in first] == ["due_soon"] and again == []
    assert {p: dict(c) for p, c in proc.counters.counts.items()} == counts


def test_alert_ids_are_stable_across_runs():
    def run():
        proc, store = processor(), DictStore()
        alerts, _ = feed(proc, store, [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
                                       clock_event(datetime(2026, 11, 6, 1, 0, tzinfo=VN), 1)])
        return [a.alert_id for a in alerts]
    assert run() == run() and len(run()) == 1


def test_bad_input_goes_to_dead_letters_and_the_stream_goes_on():
    proc, store = processor(), DictStore()
    _, dead = feed(proc, store, [b"{not json", ev("B", 1, EventType.RESULT_READY, ACCEPTED),
                                 ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE)])
    assert [d.reason_code for d in dead] == ["malformed_json", "illegal_transition"]
    assert dead[0].original == b"{not json"
    assert backlog_by_sla(proc) == {"within_due": 1}


def test_rebuild_from_the_table_gives_the_same_counters():
    proc, store = processor(), DictStore()
    feed(proc, store, [ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
                       ev("B", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
                       ev("B", 2, EventType.RESULT_READY, ACCEPTED + timedelta(hours=2)),
                       clock_event(datetime(2026, 11, 5, 8, 0, tzinfo=VN), 1)])
    fresh = processor()
    fresh.rebuild((decode_stored(v) for v in store.values()), {0})
    assert fresh.counters.counts[0] == {k: v for k, v in proc.counters.counts[0].items() if v}


class WallClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_wall_clock_holds_alerts_while_catching_up_and_sends_only_current_ones():
    wall = WallClock(datetime(2026, 11, 20, 9, 0, tzinfo=VN))  # long after both due dates
    proc, store = processor("wall", live_lag=10, wall=wall), DictStore()
    proc.clock.set_lag(0, 5000)  # replaying history
    alerts, _ = feed(proc, store, [
        ev("A", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
        ev("B", 1, EventType.ACCEPTED, ACCEPTED, due_at=DUE),
        ev("B", 2, EventType.RESULT_READY, datetime(2026, 11, 4, 10, 0, tzinfo=VN)),
    ])
    assert alerts == []  # no page while catching up
    assert backlog_by_sla(proc) == {"overdue": 1}  # but the counters are right
    proc.clock.set_lag(0, 0)
    fx = proc.on_tick(0, store)
    assert [(a.kind, a.dossier_id) for a in fx.alerts] == [("escalation", "A")]  # B was resolved in the replay
    assert proc.on_tick(0, store).alerts == []


@pytest.mark.parametrize("mode", ["wall", "event"])
def test_clock_modes_are_validated(mode):
    assert Clock(mode).mode == mode
    with pytest.raises(ValueError):
        Clock("lunar")


def test_a_dossier_born_due_soon_is_counted_but_not_paged():
    proc, store = processor(), DictStore()
    # Birth registration is a same-day procedure: accepted at 09:00, due 17:00 the same day.
    birth = events.encode(DossierEvent(
        event_id="S-1", event_type=EventType.ACCEPTED, dossier_id="S", seq=1, occurred_at=ACCEPTED,
        commune_code="18073", procedure_code="1.001193", channel=Channel.IN_PERSON,
        due_at=datetime(2026, 11, 2, 17, 0, tzinfo=VN)))
    alerts, _ = feed(proc, store, [birth])
    assert alerts == [] and backlog_by_sla(proc) == {"due_soon": 1}
    alerts, _ = feed(proc, store, [clock_event(datetime(2026, 11, 3, 8, 0, tzinfo=VN), 1)])
    assert [a.kind for a in alerts] == ["overdue"]
