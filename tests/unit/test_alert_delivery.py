"""The router's delivery to Alertmanager: retried until accepted, refused alerts dead-lettered, nothing dropped.

Alertmanager is played by httpx's MockTransport here, to script failures exactly; the integration
tests (tests/integration/test_alert_router.py) run the real one.
"""

from datetime import datetime, timedelta, timezone

import httpx
import msgspec
import pytest

from onestop import dlq
from onestop.settings import Settings
from sinks.alert_router import AlertRouter, RouterStopped
from sinks.alertmanager import AlertmanagerClient, AlertmanagerRejected, AlertmanagerUnavailable
from streams.model import Alert

NOW = datetime(2026, 11, 17, 3, tzinfo=timezone.utc)


def alert(dossier: str) -> Alert:
    due = datetime(2026, 11, 13, 10, tzinfo=timezone.utc)
    return Alert(alert_id=f"a-{dossier}", kind="overdue", dossier_id=dossier, commune_code="18754",
                 receiving_commune_code="18754", procedure_code="1.001193", field="Hộ tịch", due_at=due,
                 original_due_at=due, fired_at=NOW - timedelta(days=3), clock="wall")


class ScriptedAlertmanager:
    """Answers POST /api/v2/alerts from a script of statuses; then 200. Records what it took."""

    def __init__(self, script: list[int | Exception], refuse: set[str] = frozenset()) -> None:
        self.script, self.refuse = list(script), refuse
        self.taken: list[dict] = []
        self.posts: list[list[dict]] = []
        self.calls = 0
        self.started = "2026-11-17T02:00:00Z"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/status":
            return httpx.Response(200, json={"uptime": self.started})
        self.calls += 1
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            return httpx.Response(step, text="scripted")
        body = msgspec.json.decode(request.content)
        self.posts.append(body)
        if any(a["labels"]["dossier_id"] in self.refuse for a in body):
            return httpx.Response(400, text="invalid alert")
        self.taken += body
        return httpx.Response(200)


def router(am: ScriptedAlertmanager) -> AlertRouter:
    settings = Settings(router_retry_max_s=0.05, router_batch=2)
    client = AlertmanagerClient("http://am.test", transport=httpx.MockTransport(am))
    return AlertRouter(settings, client, clock=lambda: NOW)


def test_the_client_tells_unavailable_from_refused():
    for status, kind in ((503, AlertmanagerUnavailable), (429, AlertmanagerUnavailable), (400, AlertmanagerRejected)):
        client = AlertmanagerClient("http://am.test", transport=httpx.MockTransport(lambda r, s=status: httpx.Response(s)))
        with pytest.raises(kind):
            client.post_alerts([])
    down = AlertmanagerClient("http://am.test", transport=httpx.MockTransport(
        lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused"))))
    with pytest.raises(AlertmanagerUnavailable):
        down.post_alerts([])


def test_an_outage_is_waited_out_and_the_alerts_are_posted_once_it_ends():
    am = ScriptedAlertmanager([httpx.ConnectError("refused"), 503, 502])
    r = router(am)
    for d in ("D1", "D2", "D3"):
        r.book.fold(alert(d))
    r._deliver(r.book.changes(NOW), NOW)
    taken = {a["labels"]["dossier_id"] for a in am.taken}
    assert taken == {"D1", "D2", "D3"} and am.calls >= 5
    assert set(r.book.posted) == {"D1", "D2", "D3"} and not r.book.dirty


def test_a_stop_during_an_outage_leaves_the_alerts_unposted_and_marked_changed():
    am = ScriptedAlertmanager([503] * 1000)
    r = router(am)
    r.book.fold(alert("D1"))
    r._stop.wait = lambda seconds: r._stop.set() or True  # the stop arrives during the first backoff
    with pytest.raises(RouterStopped):
        r._deliver(r.book.changes(NOW), NOW)
    assert r.book.dirty == {"D1"} and not r.book.posted


def test_a_refused_alert_goes_to_the_dead_letters_and_its_neighbours_are_posted():
    am = ScriptedAlertmanager([], refuse={"D2"})
    r = router(am)
    for d in ("D1", "D2", "D3"):
        r.book.fold(alert(d))
    r._deliver(r.book.changes(NOW), NOW)
    assert {a["labels"]["dossier_id"] for a in am.taken} == {"D1", "D3"}
    # D2 is 2 working days overdue: its officer and commune-leaders alerts were both refused.
    assert [(d.reason_code, d.dossier_id) for d in r._dead] == [("alertmanager_rejected", "D2")] * 2
    refused = [msgspec.json.decode(dlq.decode(dlq.encode(d)).original)["labels"] for d in r._dead]
    assert {(x["dossier_id"], x["escalation"]) for x in refused} == {("D2", "officer"), ("D2", "commune_leaders")}
    assert "D2" not in r.book.posted


def test_a_restarted_alertmanager_gets_every_active_alert_in_one_go():
    am = ScriptedAlertmanager([])
    r = router(am)
    r.settings = r.settings.model_copy(update={"router_batch": 100})
    for d in ("D1", "D2", "D3"):
        r.book.fold(alert(d))
    r._deliver(r.book.changes(NOW), NOW)
    # Alertmanager restarts (and forgets its alerts) while D4 arrives: not D4 alone, all four are posted.
    am.script, am.started = [503], "2026-11-17T02:30:00Z"
    r.book.fold(alert("D4"))
    r._deliver(r.book.changes(NOW), NOW)
    assert {a["labels"]["dossier_id"] for a in am.posts[-1]} == {"D1", "D2", "D3", "D4"}
    assert len(am.posts) == 2  # the first post, then everything once it was back


def test_a_restart_between_two_posts_is_noticed_too():
    am = ScriptedAlertmanager([])
    r = router(am)
    r.settings = r.settings.model_copy(update={"router_batch": 100})
    r.book.fold(alert("D1"))
    r._deliver(r.book.changes(NOW), NOW)
    am.started = "2026-11-17T02:30:00Z"
    r.book.fold(alert("D2"))
    r._deliver(r.book.changes(NOW), NOW)
    assert {a["labels"]["dossier_id"] for a in am.posts[-1]} == {"D1", "D2"}
