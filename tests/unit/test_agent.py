"""The Faust wiring of the worker, exercised with ``agent.test_context()`` (no broker).

Sends to other topics are captured in memory: this tier checks what the agent
hands to Faust; the integration tests run the same agent on real Kafka.
"""

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import faust.topics
import pytest

from onestop import dlq, events
from onestop.events import Channel, DossierEvent, EventType
from onestop.settings import Settings
from streams.app import create_app
from streams.model import decode_alert, decode_stored

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def ev(dossier: str, seq: int, kind: EventType, at: datetime, **kw) -> bytes:
    return events.encode(DossierEvent(
        event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=at,
        commune_code="18073", procedure_code="2.000720", channel=Channel.ONLINE, **kw))


@pytest.fixture
def worker_app(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path, clock="event", allowed_lateness_s=0, web_port=0, app_id="test-agent")
    app = create_app(settings, store_url="memory://")
    sent: list[tuple[str, bytes | None, bytes]] = []

    async def capture(self, *, key=None, value=None, partition=None, **kw):
        sent.append((self.get_topic_name(), key, value))

    monkeypatch.setattr(faust.topics.Topic, "send", capture)
    return app, settings, sent


def run(coro):
    return asyncio.get_event_loop_policy().new_event_loop().run_until_complete(coro)


def test_agent_folds_events_into_the_table_and_dead_letters_bad_records(worker_app):
    app, settings, sent = worker_app
    accepted = ev("A", 1, EventType.ACCEPTED, datetime(2026, 11, 2, 9, 0, tzinfo=VN),
                  due_at=datetime(2026, 11, 5, 17, 0, tzinfo=VN))

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            await agent.put(key=b"A", value=accepted)
            await agent.put(key=b"X", value=b"{broken")
            await agent.put(key=b"A", value=accepted)  # redelivery
        return app.tables["dossier-state"]

    table = run(scenario())
    stored = decode_stored(table[b"A"])
    assert stored.state.status == 2 and stored.sla == "within_due"
    dead = [dlq.decode(v) for t, _, v in sent if t == settings.topic_dlq]
    assert [d.reason_code for d in dead] == ["malformed_json"]
    assert app.onestop_processor.counters.totals("backlog") == {"18073": 1}


def test_agent_sends_alerts_when_the_event_clock_passes_a_deadline(worker_app):
    app, settings, sent = worker_app
    records = [
        ev("A", 1, EventType.ACCEPTED, datetime(2026, 11, 2, 9, 0, tzinfo=VN), due_at=datetime(2026, 11, 5, 17, 0, tzinfo=VN)),
        ev("B", 1, EventType.SUBMITTED, datetime(2026, 11, 6, 8, 0, tzinfo=VN)),  # moves the clock past the due date
    ]

    async def scenario():
        async with app.onestop_agent.test_context() as agent:
            for raw in records:
                await agent.put(key=b"k", value=raw)

    run(scenario())
    kinds = [decode_alert(v).kind for t, _, v in sent if t == settings.topic_alerts]
    assert kinds == ["overdue"]
