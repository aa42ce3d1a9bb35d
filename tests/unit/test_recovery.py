"""What makes a restart (crash, rebalance, replay) end with the results of an uninterrupted run, without Kafka.

The integration tests (tests/integration/test_crash_recovery.py, test_replay.py,
test_scale_out.py) kill and move real workers; these pin the pieces down.
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.workcal import default_calendar
from streams.clock import Clock
from streams.counters import Counters, contributions
from streams.evaluate import Evaluator
from streams.model import alert_id, decode_stored
from streams.processor import Processor
from streams.readback import latest_of, totals_of

VN = ZoneInfo("Asia/Ho_Chi_Minh")
DUE = datetime(2026, 11, 5, 17, 0, tzinfo=VN)  # Thursday; due soon from Wednesday 17:00 (one working day left)


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def accepted(dossier: str, at: datetime) -> bytes:
    return events.encode(DossierEvent(
        event_id=f"{dossier}-1", event_type=EventType.ACCEPTED, dossier_id=dossier, seq=1, occurred_at=at,
        commune_code="18073", procedure_code="2.000720", channel=Channel.IN_PERSON, due_at=DUE))


def processor() -> Processor:
    return Processor(Evaluator(default_calendar(), default_catalogue()), Clock("event", allowed_lateness=timedelta(0)))


def test_alert_ids_name_the_instant_not_its_time_zone():
    utc = DUE.astimezone(timezone.utc)
    assert alert_id("A", "overdue", DUE) == alert_id("A", "overdue", utc)
    assert alert_id("A", "overdue", DUE) != alert_id("A", "overdue", DUE + timedelta(seconds=1))


def test_rows_a_rebuild_does_not_resend_are_void():
    proc, store = processor(), DictStore()
    proc.on_event(0, 0, accepted("A", datetime(2026, 11, 2, 9, 0, tzinfo=VN)), store)
    dossier = decode_stored(store[b"A"])

    before_crash = Counters()
    before_crash.move(0, None, dossier)
    sent = before_crash.drain({0: None})
    assert totals_of(latest_of(sent))[next(iter(contributions(dossier)))] == 1
    before_crash.move(0, dossier, None)  # its keys fall to zero; the process dies before it publishes that

    after_restart = Counters()
    after_restart.rebuild([], {0})  # the table holds nothing for partition 0 any more
    resent = after_restart.drain({0: None})
    assert len(resent) == 1 and resent[0].rows == [] and resent[0].epoch > max(b.version for b in sent)
    assert totals_of(latest_of(sent + resent)) == {} == totals_of(latest_of(resent + sent))

    rebuilt = Counters()
    rebuilt.rebuild([dossier], {0})
    assert totals_of(latest_of(sent + rebuilt.drain({0: None}))) == {k: 1 for k in contributions(dossier)}


def test_other_partitions_keep_their_rows_across_a_rebuild():
    c = Counters()
    c.counts[1][("backlog", "x")] = 2
    c.dirty[1].add(("backlog", "x"))
    kept = c.drain({})
    c.rebuild([], {0})
    assert totals_of(latest_of(kept + c.drain({}))) == {("backlog", "x"): 2}


def test_rebuild_does_not_step_over_a_transition_of_the_last_minute():
    # Accepted 30 s before the due-soon window opens (Wednesday 17:00): the next check is put a minute
    # ahead, at 17:00:30. The worker dies; the clock restored on rebuild reads 17:00:10.
    proc, store = processor(), DictStore()
    proc.on_event(0, 0, accepted("A", datetime(2026, 11, 4, 16, 59, 30, tzinfo=VN)), store)
    assert decode_stored(store[b"A"]).sla == "within_due"

    restarted = processor()
    restarted.clock.observe(0, datetime(2026, 11, 4, 17, 0, 10, tzinfo=VN))
    restarted.rebuild([decode_stored(v) for v in store.values()], {0})
    fx = restarted.on_tick(0, store)
    assert [a.kind for a in fx.alerts] == ["due_soon"]
    assert decode_stored(store[b"A"]).sla == "due_soon"


def _accepted_stored(dossier: str, at: datetime):
    proc, store = processor(), DictStore()
    proc.on_event(0, 0, accepted(dossier, at), store)
    return decode_stored(store[dossier.encode()])


def test_old_throughput_buckets_leave_memory_once_published_and_late_updates_are_counted():
    counters = Counters()
    old = _accepted_stored("OLD", datetime(2026, 11, 2, 9, 0, tzinfo=VN))
    counters.move(0, None, old)
    minute = next(k for k in contributions(old) if k[0] == "throughput" and k[1] == "m")
    clock = datetime(2026, 11, 5, 9, 0, tzinfo=VN)  # three days on: past the 2-day retention of minute buckets

    counters.evict(0, clock)
    assert minute in counters.counts[0], "an unpublished bucket stays until it is drained"
    counters.drain({0: clock})
    counters.evict(0, clock)
    assert minute not in counters.counts[0]
    assert any(k[1] == "h" for k in counters.counts[0] if k[0] == "throughput"), "hour buckets keep 62 days"

    counters.move(0, None, _accepted_stored("LATE", datetime(2026, 11, 2, 9, 0, 30, tzinfo=VN)))  # same old minute
    assert minute not in counters.counts[0] and counters.late_updates == 1

    # a rebuild recounts from the table, and old buckets go again once published
    counters.rebuild([old], {0})
    assert minute in counters.counts[0]
    counters.drain({0: clock})
    counters.evict(0, clock)
    assert minute not in counters.counts[0]
