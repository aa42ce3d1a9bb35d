"""A record is applied whole or not at all: an exception half-way leaves no trace.

A dossier accepted Monday 2 Nov 2026 09:00 (2.000720, 3 working days) is due
Thursday 5 Nov 17:00 and overdue from Friday 6 Nov. An unrelated event at
Friday 08:00 moves the event clock past the due date, so handling it fires the
deadline index, decides the overdue alert and writes the dossier, in that
order. Here the worker fails right after that write.
"""

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from onestop import dlq, events
from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.settings import Settings
from onestop.workcal import default_calendar
from streams.app import build_processor, create_app
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_alert, decode_stored
from streams.outbox import MemoryOutbox
from streams.processor import Processor

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def ev(dossier: str, seq: int, kind: EventType, at: datetime, **kw) -> bytes:
    return events.encode(DossierEvent(
        event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=at,
        commune_code="18073", procedure_code="2.000720", channel=Channel.IN_PERSON, **kw))


ACCEPTED_A = ev("A", 1, EventType.ACCEPTED, datetime(2026, 11, 2, 9, 0, tzinfo=VN),
                due_at=datetime(2026, 11, 5, 17, 0, tzinfo=VN))
FRIDAY_B = ev("B", 1, EventType.SUBMITTED, datetime(2026, 11, 6, 8, 0, tzinfo=VN))
FRIDAY_C = ev("C", 1, EventType.SUBMITTED, datetime(2026, 11, 6, 9, 0, tzinfo=VN))


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


class Fault:
    """Makes the deadline index fail for one dossier, once: that happens right after its state is written."""

    def __init__(self, proc: Processor, dossier: str, armed: bool = True) -> None:
        self.real, self.dossier, self.armed = proc.index.schedule, dossier, armed
        proc.index.schedule = self  # type: ignore[method-assign]

    def __call__(self, partition, dossier_id, when):
        if self.armed and dossier_id == self.dossier:
            self.armed = False
            raise RuntimeError("defect after the state write")
        return self.real(partition, dossier_id, when)


def test_an_exception_after_the_state_write_leaves_no_trace_in_the_processor():
    proc = Processor(Evaluator(default_calendar(), default_catalogue()), Clock("event", allowed_lateness=timedelta(0)))
    store = DictStore()
    proc.on_event(0, 0, ACCEPTED_A, store)
    table, counts = dict(store), dict(proc.counters.counts[0])
    seen, scheduled = proc.clock.seen(0), proc.index.when(0, "A")
    Fault(proc, "A")
    with pytest.raises(RuntimeError, match="after the state write"):
        proc.on_event(0, 1, FRIDAY_B, store)
    assert dict(store) == table  # no state change: A is not recorded as alerted, B is not stored
    assert {k: v for k, v in proc.counters.counts[0].items() if v} == {k: v for k, v in counts.items() if v}
    assert proc.clock.seen(0) == seen and proc.index.when(0, "A") == scheduled
    # The next record finds everything as it was, and the overdue alert goes out then, once.
    fx = proc.on_event(0, 2, FRIDAY_C, store)
    assert [(a.kind, a.dossier_id) for a in fx.alerts] == [("overdue", "A")]
    assert decode_stored(store[b"A"]).alerts == (fx.alerts[0].alert_id,)
    assert proc.on_event(0, 3, FRIDAY_C, store).alerts == []


def test_the_worker_dead_letters_the_failed_record_once_and_sends_its_alert_with_a_later_record(tmp_path):
    settings = Settings(home=tmp_path, clock="event", allowed_lateness_s=0, web_port=0, app_id="test-scope",
                        event_clock_quorum=1,  # the watermark follows every event, as in the processor test
                        worker_batch_within_s=0.01)
    proc = build_processor(settings)
    fault = Fault(proc, "A", armed=False)
    outbox = MemoryOutbox(settings.partitions)
    app = create_app(settings, proc, store_url="memory://", outbox=outbox, on_fatal=outbox.fatal.append)

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            await agent.put(key=b"k", value=ACCEPTED_A)
            while app.onestop_handled["records"] < 1:
                await asyncio.sleep(0.005)
            fault.armed = True
            await agent.put(key=b"k", value=FRIDAY_B)
            while app.onestop_handled["records"] < 2:
                await asyncio.sleep(0.005)
            between = decode_stored(app.tables["dossier-state"].data.get(b"A"))
            await agent.put(key=b"k", value=FRIDAY_C)
            while app.onestop_handled["records"] < 3:
                await asyncio.sleep(0.005)
        return between, app.tables["dossier-state"]

    between, table = asyncio.new_event_loop().run_until_complete(scenario())
    assert between.alerts == () and between.sla == "within_due"  # the failed record left A untouched
    dead = [dlq.decode(v) for t, v in outbox.records() if t == settings.topic_dlq]
    assert [(d.reason_code, d.original) for d in dead] == [("processing_error", FRIDAY_B)]
    alerts = [decode_alert(v) for t, v in outbox.records() if t == settings.topic_alerts]
    assert [(a.kind, a.dossier_id) for a in alerts] == [("overdue", "A")]
    assert decode_stored(table[b"A"]).alerts == (alerts[0].alert_id,)
    assert b"B" not in table.data and not outbox.fatal
