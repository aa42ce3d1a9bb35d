"""Alerts held while a partition catches up survive a SIGKILL (wall clock, real Kafka).

On the wall clock a worker that is far behind holds its alerts, so that a
replay of history does not page anybody for dossiers it resolves a moment
later. Here every partition starts far behind: the whole history is published
before the worker starts. Most dossiers were due a month ago and are still
open, so each owes one escalation alert; the worker is killed (SIGKILL) while
it is still catching up, restarted with the same application id and home, and
must then send every one of them once it has caught up, and nothing for the
dossiers that were resolved or are not due yet.

The expected alerts are known from how the events were made, not from the
worker's code.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from ops.services import Services
from onestop.events import Channel, DossierEvent, EventType
from stream_runs import committed_progress, grep_log, namespace, publish, run_settings, wait_worker
from streams.readback import read_alert_records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

COMMUNES = ("18754", "18757", "18760", "18763")
DOSSIERS = 7_000
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _event(dossier: str, seq: int, kind: EventType, at: datetime, commune: str, **kw) -> DossierEvent:
    return DossierEvent(event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=at,
                        commune_code=commune, procedure_code="2.000720", channel=Channel.IN_PERSON,
                        source="test", **kw)


def history() -> tuple[list[DossierEvent], set[str]]:
    """Three kinds of dossier, in turn: overdue and open (owes an escalation alert), overdue but resolved
    in the same history (owes nothing), and due in two months (owes nothing yet)."""
    evs, owed = [], set()
    for n in range(DOSSIERS):
        dossier, commune = f"HC-{n:05d}", COMMUNES[n % len(COMMUNES)]
        kind = n % 3
        accepted = NOW - timedelta(days=45 if kind < 2 else 1)
        due = NOW - timedelta(days=30) if kind < 2 else NOW + timedelta(days=60)
        evs.append(_event(dossier, 1, EventType.ACCEPTED, accepted, commune, due_at=due))
        evs.append(_event(dossier, 2, EventType.STEP_ASSIGNED, accepted + timedelta(hours=1), commune,
                          step="công chức tư pháp"))
        if kind == 1:
            evs.append(_event(dossier, 3, EventType.RESULT_READY, accepted + timedelta(days=20), commune))
        if kind == 0:
            owed.add(dossier)
    evs.sort(key=lambda e: (e.occurred_at, e.dossier_id, e.seq))
    return evs, owed


@pytest.fixture
def fast_failover(monkeypatch: pytest.MonkeyPatch) -> None:
    # A SIGKILLed member stays in the group until its session times out; keep that short (broker minimum 6 s).
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "8")
    monkeypatch.setenv("BROKER_HEARTBEAT_INTERVAL", "1")


def _wait_committed(settings, services: Services, target: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (done := committed_progress(settings)) < target:
        services.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker committed {done:,} of {target:,} records within {timeout:.0f}s")
        time.sleep(0.2)
    return done


def _escalations(settings) -> dict[str, set[str]]:
    """Alert ids per dossier, for escalation alerts."""
    out: dict[str, set[str]] = {}
    for alert in read_alert_records(settings):
        if alert.kind == "escalation":
            out.setdefault(alert.dossier_id, set()).add(alert.alert_id)
    return out


def test_alerts_held_during_the_catch_up_are_sent_after_a_sigkill(kafka_settings, tmp_path, fast_failover):
    evs, owed = history()
    ns = namespace(kafka_settings, "held", tmp_path / "ns")
    # live_lag 20: a partition further behind than 20 records holds its alerts (each has ~1,300 here).
    run = run_settings(ns, "w", tmp_path / "w", clock="wall", live_lag=20, tick_interval_s=0.5)
    publish(ns, evs)  # the whole history is there before the worker starts: every partition catches up
    services = Services(run)
    try:
        services.start("worker", "worker")
        done = _wait_committed(run, services, int(0.4 * len(evs)), timeout=240)
        before_kill = _escalations(run)
        proc = services.procs.pop("worker")
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no flush, no commit
        proc.wait(10)
        services.start("worker", "worker")
        wait_worker(run, services, timeout=300)
        deadline = time.monotonic() + 60  # caught up: the held alerts go out at the next tick
        while set(got := _escalations(run)) != owed and time.monotonic() < deadline:
            services.check_alive()
            time.sleep(0.5)
    finally:
        services.stop_all()

    # The kill came during the catch-up, with alerts held, and the restarted worker held them again.
    assert done < len(evs) and len(before_kill) < len(owed) // 2, (done, len(before_kill))
    rebuilt = [line for line in grep_log(run, "worker", "alerts owed") if " 0 alerts owed" not in line]
    assert rebuilt, grep_log(run, "worker", "rebuilt ")
    # Every owed alert arrived, for no other dossier, each with one stable id.
    missing, extra = owed - set(got), set(got) - owed
    assert not missing and not extra, (f"{len(missing)} owed alerts never arrived (e.g. {sorted(missing)[:3]}), "
                                       f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]})")
    assert all(len(ids) == 1 for ids in got.values())
    others = [a for a in read_alert_records(run) if a.kind != "escalation"]
    assert others == [], others[:3]
    print(f"\nheld alerts: {len(evs):,} events, killed at {done:,} committed with {len(before_kill):,} of "
          f"{len(owed):,} escalations sent; all {len(got):,} arrived after the restart")
