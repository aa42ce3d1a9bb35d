"""`onestop query` while the sink writes under load: growing counts from the store's owner, writes refused.

Real Kafka, the real `onestop sink` and `onestop simulate` publishing as
subprocesses, and `onestop query` run as the command a data team runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date

import pytest

from ops.services import Services
from ops.lag import wait_caught_up
from producers.simulator import SimulationConfig, simulate
from sinks.store_owner import advert_path

pytestmark = pytest.mark.integration

CFG = dict(communes=10, dossiers=4000, seed=11, start=date(2026, 11, 2), days=10)
SPEED = "20000"  # 10 simulated days in about 45 s of wall time
FORBIDDEN = [
    "INSERT INTO ioc.dossier_events (event_id) VALUES ('forged')",
    "DROP TABLE ioc.dossier_events",
    "ALTER TABLE ioc.dossier_events DELETE WHERE 1",
    "TRUNCATE TABLE ioc.dossier_events",
    "SET readonly = 0",
    "SELECT count() FROM ioc.dossier_events SETTINGS readonly = 0",
    "SYSTEM STOP MERGES",
    "OPTIMIZE TABLE ioc.dossier_events FINAL",
]


def onestop(services: Services, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onestop_cli", *args], env=services.env(), capture_output=True,
                          text=True, timeout=120)


def count(services: Services, final: bool = False) -> int:
    done = onestop(services, "query", f"SELECT count() AS n FROM ioc.dossier_events{' FINAL' if final else ''}",
                   "--format", "json", "--show-origin")
    assert done.returncode == 0, done.stderr
    assert "answered by the store owner" in done.stderr, done.stderr
    return json.loads(done.stdout)[0]["n"]


def wait_for_owner(settings, services: Services, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_alive()
        path = advert_path(settings)
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.2)
    raise AssertionError("the sink never advertised its query endpoint")


def test_counts_keep_growing_while_the_sink_writes_and_writes_are_refused(isolate, tmp_path):
    settings = isolate("qload", home=tmp_path, web_port=0, sink_group="it-qload-sink")
    expected = sum(1 for _ in simulate(SimulationConfig(**CFG)))
    services = Services(settings)
    try:
        services.start("sink", "sink")
        advert = wait_for_owner(settings, services)
        assert advert["pid"] == services.procs["sink"].pid
        simulator = subprocess.Popen(
            [sys.executable, "-m", "onestop_cli", "simulate", "--communes", str(CFG["communes"]),
             "--dossiers", str(CFG["dossiers"]), "--seed", str(CFG["seed"]), "--start", "2026-11-02",
             "--days", str(CFG["days"]), "--speed", SPEED],
            env=services.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen, refusals = [], []
        try:
            while simulator.poll() is None:
                seen.append(count(services))
                if len(seen) % 3 == 0 and len(refusals) < len(FORBIDDEN):  # some refusals under load
                    refusals.append(onestop(services, "query", FORBIDDEN[len(refusals)]))
        finally:
            simulator.wait(timeout=120)
        assert simulator.returncode == 0
        wait_caught_up(settings, {settings.sink_group: [settings.topic_events]}, timeout=120, settle=2.0,
                       on_poll=lambda _: services.check_alive())
        while len(refusals) < len(FORBIDDEN):
            refusals.append(onestop(services, "query", FORBIDDEN[len(refusals)]))
        final = count(services, final=True)
        services.check_alive()
    finally:
        services.stop_all()
    assert seen == sorted(seen), seen  # never going back
    assert len(set(seen)) >= 3 and seen[0] < expected, seen  # answered while the rows were still arriving
    for sql, done in zip(FORBIDDEN, refusals):
        assert done.returncode == 2 and "refused" in done.stderr, (sql, done.returncode, done.stderr)
    assert final == expected  # the store is unharmed: every published event, nothing forged or dropped
