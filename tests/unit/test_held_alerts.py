"""Alerts held while a partition catches up (wall clock) are owed by the stored dossier, not by memory.

2.000720 has 3 working days: accepted Monday 2 Nov 2026 09:00, due Thursday
5 Nov 17:00, due soon from Wednesday 17:00 (one working day left), overdue
from Friday 6 Nov, escalated (2 working days overdue, as configured here)
from Tuesday 10 Nov.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.workcal import default_calendar
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored, encode_stored
from streams.processor import Processor

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DUE = datetime(2026, 11, 5, 17, 0, tzinfo=VN)


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


class Wall:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def accepted(dossier: str, procedure: str = "2.000720", due: datetime = DUE,
             at: datetime = datetime(2026, 11, 2, 9, 0, tzinfo=VN)) -> bytes:
    return events.encode(DossierEvent(
        event_id=f"{dossier}-1", event_type=EventType.ACCEPTED, dossier_id=dossier, seq=1, occurred_at=at,
        commune_code="18073", procedure_code=procedure, channel=Channel.IN_PERSON, due_at=due))


def worker(wall: Wall) -> Processor:
    clock = Clock("wall", allowed_lateness=timedelta(0), live_lag=10, wall=wall)
    return Processor(Evaluator(default_calendar(), default_catalogue(), escalate_after_working_days=2), clock)


def stored(store: DictStore, dossier: str):
    return decode_stored(store[dossier.encode()])


def test_a_due_soon_alert_held_while_catching_up_goes_out_once_live():
    wall = Wall(datetime(2026, 11, 4, 10, 0, tzinfo=VN))  # Wednesday morning: still within due
    proc, store = worker(wall), DictStore()
    proc.clock.set_lag(0, 5000)
    proc.on_event(0, 0, accepted("A"), store)
    wall.now = datetime(2026, 11, 4, 17, 30, tzinfo=VN)  # the window opens while the partition catches up
    assert proc.on_tick(0, store).alerts == []
    assert stored(store, "A").sla == "due_soon" and stored(store, "A").held
    proc.clock.set_lag(0, 0)
    assert [a.kind for a in proc.on_tick(0, store).alerts] == ["due_soon"]
    assert not stored(store, "A").held
    assert proc.on_tick(0, store).alerts == []


def test_alerts_held_before_a_crash_are_held_again_by_the_rebuild_and_sent_once_live():
    wall = Wall(datetime(2026, 11, 20, 9, 0, tzinfo=VN))  # long after the due date: escalated
    proc, store = worker(wall), DictStore()
    proc.clock.set_lag(0, 5000)
    for n in range(3):
        proc.on_event(0, n, accepted(f"D{n}"), store)
    assert all(stored(store, f"D{n}").held for n in range(3))
    # SIGKILL: memory is gone, the table (as the changelog restores it) is all that is left.
    restarted = worker(wall)
    restarted.rebuild([decode_stored(v) for v in store.values()], {0})
    assert restarted.owed == {0: {"D0", "D1", "D2"}}
    restarted.clock.set_lag(0, 0)
    sent = restarted.on_tick(0, store).alerts
    assert sorted((a.dossier_id, a.kind) for a in sent) == [("D0", "escalation"), ("D1", "escalation"),
                                                           ("D2", "escalation")]
    assert restarted.on_tick(0, store).alerts == []
    assert restarted.owed == {0: set()}


def test_an_overdue_dossier_stored_without_its_alert_is_owed_one_after_a_rebuild():
    # A state written before dossiers recorded held alerts: overdue, no alert id, no flag.
    wall = Wall(datetime(2026, 11, 20, 9, 0, tzinfo=VN))
    proc, store = worker(wall), DictStore()
    proc.clock.set_lag(0, 5000)
    proc.on_event(0, 0, accepted("A"), store)
    old = msgspec.structs.replace(stored(store, "A"), held=False)
    store[b"A"] = encode_stored(old)
    restarted = worker(wall)
    restarted.rebuild([old], {0})
    assert restarted.on_tick(0, store).alerts == []  # not live before a record or a tick measured the lag
    restarted.clock.set_lag(0, 3)
    assert [a.kind for a in restarted.on_tick(0, store).alerts] == ["escalation"]


def test_a_dossier_born_inside_the_due_soon_window_is_not_paged_after_a_rebuild_either():
    # Birth registration, same day: accepted 09:00, due 17:00, born due soon. Counted, never paged.
    wall = Wall(datetime(2026, 11, 2, 10, 0, tzinfo=VN))
    proc, store = worker(wall), DictStore()
    proc.on_event(0, 0, accepted("S", "1.001193", datetime(2026, 11, 2, 17, 0, tzinfo=VN)), store)
    assert stored(store, "S").sla == "due_soon" and not stored(store, "S").held
    restarted = worker(wall)
    restarted.rebuild([decode_stored(v) for v in store.values()], {0})
    assert restarted.owed == {0: set()}
    assert restarted.on_tick(0, store).alerts == []


def test_a_dossier_resolved_during_the_catch_up_is_not_paged():
    wall = Wall(datetime(2026, 11, 20, 9, 0, tzinfo=VN))
    proc, store = worker(wall), DictStore()
    proc.clock.set_lag(0, 5000)
    proc.on_event(0, 0, accepted("A"), store)
    proc.on_event(0, 1, events.encode(DossierEvent(
        event_id="A-2", event_type=EventType.RESULT_READY, dossier_id="A", seq=2,
        occurred_at=datetime(2026, 11, 4, 10, 0, tzinfo=VN), commune_code="18073", procedure_code="2.000720",
        channel=Channel.IN_PERSON)), store)
    assert not stored(store, "A").held
    restarted = worker(wall)
    restarted.rebuild([decode_stored(v) for v in store.values()], {0})
    restarted.clock.set_lag(0, 0)
    assert restarted.owed == {0: set()} and restarted.on_tick(0, store).alerts == []
