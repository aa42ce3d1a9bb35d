"""The Faust wiring of the worker, exercised with ``agent.test_context()`` (no broker).

What the worker writes to Kafka goes to a ``MemoryOutbox`` here: this tier
checks what the agent hands over and in which order; the integration tests run
the same agent on real Kafka.
"""

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from onestop import dlq, events
from onestop.events import Channel, DossierEvent, EventType
from onestop.settings import Settings
from streams.app import build_processor, create_app
from streams.model import decode_alert, decode_stored
from streams.outbox import MemoryOutbox

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def ev(dossier: str, seq: int, kind: EventType, at: datetime, **kw) -> bytes:
    return events.encode(DossierEvent(
        event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=at,
        commune_code="18073", procedure_code="2.000720", channel=Channel.ONLINE, **kw))


@pytest.fixture
def worker_app(tmp_path):
    # One event moves the event clock in these scenarios (no quorum of later events needed).
    settings = Settings(home=tmp_path, clock="event", allowed_lateness_s=0, web_port=0, app_id="test-agent",
                        worker_batch_within_s=0.01, event_clock_quorum=1)
    outbox = MemoryOutbox(settings.partitions)
    app = create_app(settings, store_url="memory://", outbox=outbox, on_fatal=outbox.fatal.append)
    return app, settings, outbox


async def handled(app, n: int, timeout: float = 5.0) -> None:
    """Wait until the agent has handled (and written) ``n`` records: it works in batches."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.onestop_handled["records"] < n:
        assert loop.time() < deadline, f"the agent handled {app.onestop_handled['records']} of {n} records"
        await asyncio.sleep(0.005)


def run(coro):
    return asyncio.get_event_loop_policy().new_event_loop().run_until_complete(coro)


def test_agent_folds_events_into_the_table_and_dead_letters_bad_records(worker_app):
    app, settings, outbox = worker_app
    accepted = ev("A", 1, EventType.ACCEPTED, datetime(2026, 11, 2, 9, 0, tzinfo=VN),
                  due_at=datetime(2026, 11, 5, 17, 0, tzinfo=VN))

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            await agent.put(key=b"A", value=accepted)
            await agent.put(key=b"X", value=b"{broken")
            await agent.put(key=b"A", value=accepted)  # redelivery
            await handled(app, 3)
        return app.tables["dossier-state"]

    table = run(scenario())
    stored = decode_stored(table[b"A"])
    assert stored.state.status == 2 and stored.sla == "within_due"
    dead = [dlq.decode(v) for t, v in outbox.records() if t == settings.topic_dlq]
    assert [d.reason_code for d in dead] == ["malformed_json"]
    assert app.onestop_processor.counters.totals("backlog") == {"18073": 1}


def test_agent_sends_alerts_when_the_event_clock_passes_a_deadline(worker_app):
    app, settings, outbox = worker_app
    records = [
        ev("A", 1, EventType.ACCEPTED, datetime(2026, 11, 2, 9, 0, tzinfo=VN), due_at=datetime(2026, 11, 5, 17, 0, tzinfo=VN)),
        ev("B", 1, EventType.SUBMITTED, datetime(2026, 11, 6, 8, 0, tzinfo=VN)),  # moves the clock past the due date
    ]

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            for raw in records:
                await agent.put(key=b"k", value=raw)
            await handled(app, len(records))

    run(scenario())
    kinds = [decode_alert(v).kind for t, v in outbox.records() if t == settings.topic_alerts]
    assert kinds == ["overdue"]


ACCEPTED_A = ev("A", 1, EventType.ACCEPTED, datetime(2026, 11, 2, 9, 0, tzinfo=VN), due_at=datetime(2026, 11, 5, 17, 0, tzinfo=VN))
LATE_B = ev("B", 1, EventType.SUBMITTED, datetime(2026, 11, 6, 8, 0, tzinfo=VN))  # moves the clock past A's due date


def test_alerts_are_acknowledged_before_the_state_that_remembers_them(worker_app):
    app, settings, outbox = worker_app

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            for raw in (ACCEPTED_A, LATE_B):
                await agent.put(key=b"k", value=raw)
            await handled(app, 2)

    run(scenario())
    changelog = f"{settings.app_id}-dossier-state-changelog"
    order = [r.topic for call in outbox.calls for r in call]
    alert_at = order.index(settings.topic_alerts)
    overdue_state_at = max(i for i, t in enumerate(order) if t == changelog)
    assert alert_at < overdue_state_at
    # every publish holds either outputs or states, never both: the states wait for the outputs' acks
    assert all(len({r.topic == changelog for r in call}) == 1 for call in outbox.calls)


def test_a_batch_kafka_refuses_is_never_applied_to_the_table(worker_app):
    app, settings, outbox = worker_app
    outbox.fail_next = ConnectionError("broker gone")

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            await agent.put(key=b"A", value=ACCEPTED_A)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not outbox.fatal:
                assert loop.time() < deadline, "the agent never gave up on the batch"
                await asyncio.sleep(0.005)
        return app.tables["dossier-state"]

    table = run(scenario())
    assert isinstance(outbox.fatal[0], ConnectionError)
    assert b"A" not in table.data
    assert app.onestop_handled["records"] == 0


def test_a_record_the_processor_fails_on_goes_to_the_dead_letters_and_the_rest_goes_on(tmp_path):
    settings = Settings(home=tmp_path, clock="event", web_port=0, app_id="test-agent", worker_batch_within_s=0.01)
    processor = build_processor(settings)
    real = processor.on_event

    def flaky(partition, offset, raw, store, **kw):
        if b'"B"' in raw:
            raise RuntimeError("defect")
        return real(partition, offset, raw, store, **kw)

    processor.on_event = flaky
    outbox = MemoryOutbox(settings.partitions)
    app = create_app(settings, processor, store_url="memory://", outbox=outbox, on_fatal=outbox.fatal.append)

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            await agent.put(key=b"B", value=LATE_B)
            await agent.put(key=b"A", value=ACCEPTED_A)
            await handled(app, 2)
        return app.tables["dossier-state"]

    table = run(scenario())
    dead = [dlq.decode(v) for t, v in outbox.records() if t == settings.topic_dlq]
    assert [(d.reason_code, d.original) for d in dead] == [("processing_error", LATE_B)]
    assert "RuntimeError: defect" in dead[0].message
    assert decode_stored(table[b"A"]).state.status == 2
    assert not outbox.fatal
