"""At-least-once with idempotent effects: a worker killed with SIGKILL mid-stream ends with the same results.

Run A processes >= 100,000 simulated events without interruption. Run B
processes the same topic under another application id, with its own output
topics, and its worker is killed (SIGKILL: no shutdown, no flush, no commit)
several times while it is mid-stream, then restarted with the same
application id and home, so it reuses its RocksDB store and changelog. At the
end B's counters must equal A's exactly and B must have sent the same set of
alert ids; a redelivered alert carries the id of the first copy and the same
content (only the clock reading at which it was decided may differ).
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from datetime import date

import pytest

from ops.services import Services
from producers.simulator import SimulationConfig, simulate
from stream_runs import (alert_content, assert_same_outcome, committed_progress, expected_backlog, grep_log,
                         namespace, publish, read_outcome, run_settings, wait_worker)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# 69 communes, 18,500 dossiers over 20 days: ~101,000 events.
CFG = SimulationConfig(communes=69, dossiers=18_500, seed=20261102, start=date(2026, 11, 2), days=20)
KILL_AT = (0.15, 0.35, 0.55, 0.75)  # fractions of the input the restarted worker has committed (at least)


@pytest.fixture
def fast_failover(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust reads these from the environment. A SIGKILLed member stays in the consumer group until its
    # session times out (Faust's default: 60 s); the restarted worker waits for that before it gets
    # its partitions back. 8 s keeps the test short and is above the broker's 6 s minimum.
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "8")
    monkeypatch.setenv("BROKER_HEARTBEAT_INTERVAL", "1")


def _wait_progress(settings, services: Services, target: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        services.check_alive()
        done = committed_progress(settings)
        if done >= target:
            return done
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker committed {done:,} of the {target:,} records awaited within {timeout:.0f}s")
        time.sleep(0.3)


def test_sigkilled_worker_ends_with_the_results_of_an_uninterrupted_one(kafka_settings, tmp_path, fast_failover):
    ns = namespace(kafka_settings, "crash", tmp_path / "ns")
    evs = list(simulate(CFG))
    assert len(evs) >= 100_000
    a = run_settings(ns, "a", tmp_path / "a")  # A: one uninterrupted worker
    b = run_settings(ns, "b", tmp_path / "b")  # B: killed several times, restarted with the same app id and home
    run_a, run_b = Services(a), Services(b)
    kills: list[tuple[int, int]] = []  # (pid, records B had committed when killed)
    t0 = time.monotonic()
    try:
        # Both groups read the same topic at the same time (two cores: A's work fills B's restart pauses).
        run_a.start("worker", "worker")
        run_b.start("worker", "worker")
        publish(ns, evs)
        t_publish = time.monotonic() - t0
        done = 0
        for fraction in KILL_AT:
            # Each restarted worker must get somewhere before it is killed: the first may already be far
            # past its mark when publishing ends (it reads while the events are published).
            target = max(int(fraction * len(evs)), done + (len(evs) - done) // 4)
            done = _wait_progress(b, run_b, target, timeout=180)
            proc = run_b.procs.pop("worker")
            os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no flush, no commit
            proc.wait(10)
            kills.append((proc.pid, done))
            run_b.start("worker", "worker")
            run_a.check_alive()
        wait_worker(a, run_a, timeout=360)
        t_a = time.monotonic() - t0
        run_a.stop_all()
        wait_worker(b, run_b, timeout=360)
        t_b = time.monotonic() - t0
    finally:
        run_a.stop_all()
        run_b.stop_all()
    want, got = read_outcome(a), read_outcome(b)

    # Every restart resumed from the stored state (RocksDB + changelog), not from an empty table.
    assert len(kills) == len(KILL_AT)
    resumed = [line for line in grep_log(b, "worker", "rebuilt ") if "rebuilt 0 dossiers" not in line]
    assert len(resumed) >= len(KILL_AT), (kills, resumed)

    # Exactly A's results.
    assert_same_outcome(got, want, "killed worker vs uninterrupted worker")

    # Redelivered alerts are allowed; an id never carries two different contents.
    by_id: dict[str, set] = defaultdict(set)
    fired: dict[str, set] = defaultdict(set)
    for alert in got.alerts:
        by_id[alert.alert_id].add(alert_content(alert))
        fired[alert.alert_id].add(alert.fired_at)
    conflicting = {aid: contents for aid, contents in by_id.items() if len(contents) > 1}
    assert not conflicting, f"{len(conflicting)} alert ids with conflicting content, e.g. {list(conflicting.items())[:2]}"
    assert {aid: next(iter(c)) for aid, c in by_id.items()} == {x.alert_id: alert_content(x) for x in want.alerts}
    redelivered = len(got.alerts) - len(by_id)
    refired = sum(1 for times in fired.values() if len(times) > 1)

    # And both agree with an independent count of the generated events.
    expected = dict(expected_backlog(evs))
    assert want.backlog_per_commune() == expected
    assert got.backlog_per_commune() == expected

    print(f"\ncrash recovery: {len(evs):,} events published in {t_publish:.1f}s; A done after {t_a:.1f}s, "
          f"B after {t_b:.1f}s with {len(kills)} SIGKILLs at committed {[d for _, d in kills]}; "
          f"{len(got.alert_ids):,} alert ids, {len(got.alerts):,} alert records in B ({redelivered} redelivered, "
          f"{refired} of them decided at another clock reading), {len(want.alerts):,} in A; "
          f"{sum(expected.values()):,} open dossiers")
