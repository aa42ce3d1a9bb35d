"""A dossier whose earlier seq never arrives does not wait for ever, and the offset guard never skips input.

Event clock, no lateness: the partition's clock is the latest ``occurred_at``
seen. The gap timeout is one hour of that clock.
"""

import asyncio
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from onestop import dlq, events
from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.settings import Settings
from onestop.workcal import default_calendar
from streams import app as worker_app
from streams.app import ShortRefill, create_app
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored
from streams.outbox import MemoryOutbox
from streams.processor import Processor
from streams.refetch import Refetched

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=VN)
E = EventType


def ev(dossier: str, seq: int, kind: EventType, at: datetime, **kw) -> bytes:
    if kind is E.ACCEPTED:
        kw.setdefault("due_at", datetime(2026, 11, 5, 17, 0, tzinfo=VN))
    return events.encode(DossierEvent(
        event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=at,
        commune_code="18073", procedure_code="2.000720", channel=Channel.IN_PERSON, **kw))


def clock_at(at: datetime, n: int) -> bytes:
    """Another dossier's first event: it only moves the partition's clock."""
    return ev(f"CLOCK-{n}", 1, E.SUBMITTED, at)


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def processor() -> Processor:
    return Processor(Evaluator(default_calendar(), default_catalogue()), Clock("event", allowed_lateness=timedelta(0)),
                     seq_gap_timeout=timedelta(hours=1))


# D: seq 1 accepted, seq 2 (a step) is lost upstream, seq 3 result ready and seq 4 returned arrive.
ACCEPTED = ev("D", 1, E.ACCEPTED, T0)
READY = ev("D", 3, E.RESULT_READY, T0 + timedelta(hours=2))
RETURNED = ev("D", 4, E.RESULT_RETURNED, T0 + timedelta(hours=2, minutes=30))
LOST_STEP = ev("D", 2, E.STEP_ASSIGNED, T0 + timedelta(hours=1))


def run(proc: Processor, store: DictStore, records: list[bytes], first_offset: int = 0):
    dead, alerts = [], []
    for offset, raw in enumerate(records, start=first_offset):
        fx = proc.on_event(0, offset, raw, store)
        dead += fx.dead_letters
        alerts += fx.alerts
    return dead, alerts


def test_waiting_events_are_counted_and_wait_until_the_timeout_on_the_partition_clock():
    proc, store = processor(), DictStore()
    dead, _ = run(proc, store, [ACCEPTED, READY, RETURNED, clock_at(T0 + timedelta(hours=2, minutes=59), 1)])
    assert dead == [] and proc.waiting_for_seq() == 1
    stored = decode_stored(store[b"D"])
    assert stored.state.status == 2 and [e.seq for e in stored.state.pending] == [3, 4]
    assert stored.gap_since == T0 + timedelta(hours=2)  # the partition clock when seq 3 began to wait


def test_after_the_timeout_the_gap_is_skipped_what_waited_is_applied_and_a_dead_letter_says_so():
    proc, store = processor(), DictStore()
    dead, _ = run(proc, store, [ACCEPTED, READY, RETURNED, clock_at(T0 + timedelta(hours=2, minutes=59), 1)])
    assert dead == []
    dead, _ = run(proc, store, [clock_at(T0 + timedelta(hours=3), 2)], first_offset=4)
    assert [(d.reason_code, d.dossier_id, d.event_id, events.decode(d.original)) for d in dead] == [
        ("seq_gap_timeout", "D", "D-3", events.decode(READY))]
    assert "seq 2, which never arrived" in dead[0].message and "applied seq 3–4" in dead[0].message
    stored = decode_stored(store[b"D"])
    assert stored.state.status == 10 and stored.state.pending == () and stored.gap_since is None
    assert stored.outcome == "before_due" and proc.waiting_for_seq() == 0
    assert proc.counters.totals("backlog") == {}  # no longer frozen in the backlog
    # The missing event turns up after all: it cannot be applied out of order, and it says why.
    late, _ = run(proc, store, [LOST_STEP], first_offset=5)
    assert [(d.reason_code, d.event_id) for d in late] == [("seq_gap_timeout", "D-2")]
    assert "stopped waiting for it" in late[0].message


def test_a_gap_that_closes_in_time_leaves_no_dead_letter():
    proc, store = processor(), DictStore()
    dead, _ = run(proc, store, [ACCEPTED, READY, LOST_STEP, clock_at(T0 + timedelta(hours=9), 1)])
    assert dead == [] and proc.waiting_for_seq() == 0
    assert decode_stored(store[b"D"]).state.status == 9


def test_a_replay_and_a_restart_give_up_on_the_gap_at_the_same_record():
    records = [ACCEPTED, READY, clock_at(T0 + timedelta(hours=2, minutes=30), 1),
               clock_at(T0 + timedelta(hours=3, minutes=1), 2), clock_at(T0 + timedelta(hours=5), 3)]

    def where_it_fires(restart_after: int | None) -> list[tuple[int, str]]:
        proc, store, out = processor(), DictStore(), []
        for offset, raw in enumerate(records):
            if offset == restart_after:  # a new worker rebuilt from the table (crash or rebalance)
                proc = processor()
                proc.rebuild([decode_stored(v) for v in store.values()], {0})
            out += [(offset, d.reason_code) for d in proc.on_event(0, offset, raw, store).dead_letters]
        return out

    assert where_it_fires(None) == [(3, "seq_gap_timeout")]
    assert where_it_fires(None) == where_it_fires(3) == where_it_fires(2)


def test_the_gap_timeout_is_a_setting():
    assert Settings().seq_gap_timeout_s == 3600
    assert Settings(seq_gap_timeout_s=60).seq_gap_timeout_s == 60
    with pytest.raises(ValueError):
        Settings(seq_gap_timeout_s=0)


# --- the offset guard's refill ---------------------------------------------------------


def _guarded_app(tmp_path, monkeypatch, refetched_offsets: list[int]):
    settings = Settings(home=tmp_path, clock="event", web_port=0, app_id="test-refill")
    outbox = MemoryOutbox(settings.partitions)
    fatal: list[BaseException] = []
    app = create_app(settings, store_url="memory://", outbox=outbox, on_fatal=fatal.append)

    async def read_range(bootstrap, topic, partition, start, end, **kw):
        return [Refetched(topic, partition, o, b"k", clock_at(T0, o)) for o in refetched_offsets]

    monkeypatch.setattr(worker_app, "read_range", read_range)
    app.onestop_guard.reset({3: 9})  # the table holds partition 3 up to offset 9
    batch = [Refetched(settings.topic_events, 3, 15, b"k", clock_at(T0, 15))]  # the consumer resumed at 15
    return app, batch, fatal


def test_a_short_refill_stops_the_worker_instead_of_skipping_records(tmp_path, monkeypatch):
    app, batch, fatal = _guarded_app(tmp_path, monkeypatch, [10, 11, 12])  # 13 and 14 could not be read
    with pytest.raises(ShortRefill):
        asyncio.new_event_loop().run_until_complete(app.onestop_fill_gaps(batch))
    assert len(fatal) == 1 and isinstance(fatal[0], ShortRefill)
    assert "offsets 10..14" in str(fatal[0]) and "only 3 of the 5" in str(fatal[0])


def test_a_complete_refill_puts_the_skipped_records_in_place(tmp_path, monkeypatch):
    app, batch, fatal = _guarded_app(tmp_path, monkeypatch, [10, 11, 12, 13, 14])
    out = asyncio.new_event_loop().run_until_complete(app.onestop_fill_gaps(batch))
    assert [r.message.offset for r in out] == [10, 11, 12, 13, 14, 15] and fatal == []


def test_stopping_the_worker_exits_non_zero_with_a_clear_log_line():
    code = ("import logging; logging.basicConfig(); "
            "from streams.app import ShortRefill, _exit_without_acknowledging as stop; "
            "stop(ShortRefill('dossier.events', 3, 10, 15, 3))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 70
    assert "CRITICAL" in done.stderr and "offsets 10..14 were skipped" in done.stderr
