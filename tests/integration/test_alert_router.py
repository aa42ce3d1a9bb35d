"""On-call alerting end to end: real Kafka, the router process, real Alertmanager, a local webhook.

One run of the scenario (module fixture), then one test per behaviour:

1. overdue dossiers of three communes, an escalated one and a due-soon one: one grouped
   notification per commune group, the escalated dossier to the officer, the commune's leaders
   and the province;
2. a dossier resolved and the due-soon one gone overdue: the resolved notification arrives, the
   due-soon alert is inhibited, not "resolved";
3. the router killed (SIGKILL) and started again: nothing re-notified;
4. the router stopped while a dossier is resolved and a new one goes overdue: both told once;
5. Alertmanager stopped while alerts arrive: the router's offsets stay put, nothing is lost, and
   once it is back only the changes are told;
6. a silence created with ``onestop alerts silence --create`` mutes a commune, and
   ``onestop alerts list`` shows it.

The expected dossiers, communes and receivers are written out here, from the routing tree in
deploy/alertmanager/alertmanager.yml, never read back from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import pytest

from ops.services import Services
from ops.lag import group_lag
from onestop.settings import settings_env
from tests.monitoring import (Alertmanager, Notification, Webhook, cleared, local_config, needs_alertmanager,
                              overdue, publish_alerts, wait_for)

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, needs_alertmanager, pytest.mark.timeout(400)]

QUIET_S = 8.0  # several group intervals (2 s) and re-posts (2 s) with nothing told


def told(notes: list[Notification], receiver: str, commune: str, alertname: str = "DossierOverdue"
         ) -> list[Notification]:
    """The notifications of one group: receiver, commune, alert name."""
    return [n for n in notes if n.receiver == receiver and n.body["groupLabels"].get("commune_code") == commune
            and n.body["groupLabels"].get("alertname") == alertname]


def one(notes: list[Notification], receiver: str, commune: str, alertname: str = "DossierOverdue") -> Notification:
    found = told(notes, receiver, commune, alertname)
    assert len(found) == 1, describe(notes)
    return found[0]


def describe(notes: list[Notification]) -> list:
    return [(n.receiver, n.body.get("groupLabels"), sorted(n.dossiers("firing")), sorted(n.dossiers("resolved")))
            for n in notes]


@dataclass
class Run:
    phases: dict[str, list[Notification]] = field(default_factory=dict)  # notifications that arrived in each phase
    lag_during_outage: int = -1
    lag_after_outage: int = -1
    list_output: str = ""
    amtool_silences: list[dict] = field(default_factory=list)


def _phase(webhook: Webhook, run: Run, name: str, seen: list[int]) -> list[Notification]:
    notes = webhook.snapshot()
    run.phases[name] = notes[seen[0]:]
    seen[0] = len(notes)
    return run.phases[name]


def _router(settings) -> Services:
    services = Services(settings)
    services.start("router", "alerts", "run")
    return services


@pytest.fixture(scope="module")
def scenario(isolate, tmp_path_factory):
    home = tmp_path_factory.mktemp("oncall")
    webhook = Webhook()
    # group_wait 6 s: a busy machine may hand the router one group's alerts a few seconds apart, and the first
    # message of a group must still carry them all.
    am = Alertmanager(home / "alertmanager", local_config(webhook, group_wait="6s")).start()
    settings = isolate("oncall", home=home, router_group="onestop-it-router", alertmanager_url=am.url,
                       router_resend_s=2.0, router_hold_s=60.0, metrics_port=0)
    run, seen = Run(), [0]
    services = _router(settings)
    a = [overdue(f"A{i}", "18100") for i in (1, 2, 3)]
    b = [overdue(f"B{i}", "18133") for i in (1, 2)]
    t1, e1 = overdue("T1", "18073"), overdue("E1", "18160", days_ago=60, kind="escalation")
    s1_soon = overdue("S1", "18100", kind="due_soon")
    try:
        # 1. grouped per commune
        publish_alerts(settings, [*a, *b, t1, e1, s1_soon])
        wait_for(lambda: len(webhook.snapshot()) >= 7, 60, "the first notifications")
        time.sleep(QUIET_S)
        _phase(webhook, run, "first", seen)
        # 2. resolved, and due soon gone overdue
        s1 = overdue("S1", "18100")
        publish_alerts(settings, [cleared(a[1]), s1])
        wait_for(lambda: any("A2" in n.dossiers("resolved") for n in webhook.snapshot()), 30, "A2 resolved")
        time.sleep(QUIET_S)
        _phase(webhook, run, "resolved", seen)
        # 3. the router killed and started again, nothing changed meanwhile
        services.procs["router"].kill()
        services.procs["router"].wait()
        services.start("router", "alerts", "run")
        time.sleep(QUIET_S + 6)
        _phase(webhook, run, "restart", seen)
        # 4. changes while the router is stopped
        services.stop("router")
        a4 = overdue("A4", "18100")
        publish_alerts(settings, [cleared(b[0]), a4])
        services.start("router", "alerts", "run")
        wait_for(lambda: any("B1" in n.dossiers("resolved") for n in webhook.snapshot()), 30, "B1 resolved")
        time.sleep(QUIET_S)
        _phase(webhook, run, "changes_while_down", seen)
        # 5. Alertmanager outage
        am.stop()
        b3, e2 = overdue("B3", "18133"), overdue("E2", "18163", days_ago=60)
        publish_alerts(settings, [b3, cleared(a[0]), e2])
        time.sleep(6)
        services.check_alive()
        run.lag_during_outage = group_lag(settings, settings.router_group, [settings.topic_alerts])
        am.start()
        wait_for(lambda: any("B3" in n.dossiers("firing") for n in webhook.snapshot()), 60, "B3 after the outage")
        time.sleep(QUIET_S)
        run.lag_after_outage = group_lag(settings, settings.router_group, [settings.topic_alerts])
        _phase(webhook, run, "outage", seen)
        # 6. silence a commune, then an alert there
        env = {**os.environ, **settings_env(settings)}
        onestop = [sys.executable, "-m", "onestop_cli", "alerts"]
        subprocess.run([*onestop, "silence", "--commune", "18172", "--comment", "mất mạng", "--create"], env=env,
                       check=True, capture_output=True, text=True, cwd=REPO_ROOT)
        printed = subprocess.run([*onestop, "silence", "--dossier", "Z9", "--comment", "đã gọi điện"], env=env,
                                 check=True, capture_output=True, text=True, cwd=REPO_ROOT).stdout
        amtool_line = next(line for line in printed.splitlines() if line.startswith("amtool "))
        subprocess.run(shlex.split(amtool_line), check=True, capture_output=True, text=True)
        run.amtool_silences = httpx.get(f"{am.url}/api/v2/silences", timeout=5).json()
        publish_alerts(settings, [overdue("M1", "18172")])
        wait_for(lambda: any(x["labels"].get("dossier_id") == "M1" for x in am.alerts()), 30, "M1 in Alertmanager")
        time.sleep(QUIET_S)
        _phase(webhook, run, "silenced", seen)
        run.list_output = subprocess.run([*onestop, "list", "--format", "jsonl"], env=env, check=True,
                                         capture_output=True, text=True, cwd=REPO_ROOT).stdout
        services.check_alive()
    finally:
        services.stop_all()
        am.stop()
        webhook.close()
        # For a failing run: what arrived in which phase.
        (home / "notifications.json").write_text(json.dumps(
            {name: describe(notes) for name, notes in run.phases.items()}, ensure_ascii=False, indent=1))
    yield run


def test_one_grouped_notification_per_commune_group(scenario):
    first = scenario.phases["first"]
    group_a = one(first, "officers-webhook", "18100")
    group_b = one(first, "officers-webhook", "18133")
    assert group_a.dossiers("firing") == {"A1", "A2", "A3"}
    assert group_b.dossiers("firing") == {"B1", "B2"}


def test_an_escalated_dossier_reaches_the_officer_the_leaders_and_the_province(scenario):
    first = scenario.phases["first"]
    for receiver in ("officers-webhook", "commune-leaders-webhook", "province-office-email"):
        note = one(first, receiver, "18160")
        assert note.dossiers("firing") == {"E1"}, receiver


def test_due_soon_is_told_on_its_own_and_telegram_gets_the_rendered_message(scenario):
    first = scenario.phases["first"]
    soon = one(first, "officers-webhook", "18100", "DossierDueSoon")
    assert soon.dossiers("firing") == {"S1"}
    [telegram] = [n for n in first if n.receiver == "telegram:-1001000018073"]
    text = telegram.body["text"]
    assert "Phường Thành Sen (18073)" in text and "Hồ sơ T1 (Đăng ký khai sinh) đã quá hạn" in text
    assert len(first) == 7  # 18100 overdue and due soon, 18133, Telegram, E1 three times, nothing else


def test_a_resolved_dossier_is_told_resolved_and_due_soon_gone_overdue_is_inhibited(scenario):
    notes = scenario.phases["resolved"]
    note = one(notes, "officers-webhook", "18100")
    assert note.dossiers("resolved") == {"A2"} and note.dossiers("firing") == {"A1", "A3", "S1"}
    assert len(notes) == 1, describe(notes)  # no "S1 due soon resolved"


def test_restarting_the_router_notifies_nobody(scenario):
    assert scenario.phases["restart"] == []


def test_changes_while_the_router_was_stopped_are_told_once(scenario):
    notes = scenario.phases["changes_while_down"]
    a = one(notes, "officers-webhook", "18100")
    b = one(notes, "officers-webhook", "18133")
    assert "A4" in a.dossiers("firing") and a.dossiers("resolved") == set()
    assert b.dossiers("resolved") == {"B1"} and b.dossiers("firing") == {"B2"}
    assert len(notes) == 2


def test_an_alertmanager_outage_loses_nothing_and_repeats_nothing(scenario):
    assert scenario.lag_during_outage == 3  # nothing committed while Alertmanager could not take it
    assert scenario.lag_after_outage == 0
    notes = scenario.phases["outage"]
    # A restarted Alertmanager holds no alert; the router posts every active one in one request. A new
    # group whose alerts started long ago is flushed at once, so Alertmanager may split that group's first
    # message while it inserts the request's alerts: what is told is checked over the phase's messages.
    def union(receiver: str, commune: str, status: str) -> set[str]:
        return set().union(*(n.dossiers(status) for n in told(notes, receiver, commune)))

    assert union("officers-webhook", "18100", "resolved") == {"A1"}, describe(notes)
    assert union("officers-webhook", "18100", "firing") == {"A3", "S1", "A4"}, describe(notes)
    assert union("officers-webhook", "18133", "firing") == {"B2", "B3"}, describe(notes)
    for receiver in ("officers-webhook", "commune-leaders-webhook", "province-office-email"):
        assert union(receiver, "18163", "firing") == {"E2"}, describe(notes)
    # Groups without a change (T1 on Telegram, E1's three) are not told again after Alertmanager restarts.
    told_groups = {(n.receiver, n.body["groupLabels"].get("commune_code")) for n in notes}
    assert told_groups == {("officers-webhook", "18100"), ("officers-webhook", "18133"),
                           *((r, "18163") for r in ("officers-webhook", "commune-leaders-webhook",
                                                    "province-office-email"))}, describe(notes)


def test_a_silenced_commune_is_not_told_and_the_list_shows_it_silenced(scenario):
    assert scenario.phases["silenced"] == []
    rows = [json.loads(line) for line in scenario.list_output.splitlines()]
    [m1] = [r for r in rows if r["dossier"] == "M1"]
    assert (m1["state"], m1["alert"], m1["step"]) == ("silenced", "DossierOverdue", "officer")
    assert {r["dossier"] for r in rows if r["state"] == "active"} >= {"A3", "A4", "B2", "B3", "T1", "E1", "E2"}


def test_the_printed_amtool_command_creates_the_dossier_silence(scenario):
    matchers = [{(m["name"], m["value"]) for m in s["matchers"]} for s in scenario.amtool_silences]
    assert {("dossier_id", "Z9")} in matchers and {("commune_code", "18172")} in matchers
