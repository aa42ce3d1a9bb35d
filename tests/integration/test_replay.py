"""Replay determinism: ``onestop replay`` under a fresh application id reproduces a live run exactly.

The live run is a worker on the event clock (as simulations and backfills
run). The replay is the real command, run through typer with the live
settings in the environment, with ``--compare``: it must exit 0, and its
counters and alert ids, read back independently, must equal the live ones.
"""

from __future__ import annotations

from datetime import date

import pytest
import typer
from typer.testing import CliRunner

from onestop.settings import get_settings, settings_env
from onestop_cli import replay as replay_cli
from ops import replay as replay_ops
from ops.services import Services
from producers.simulator import SimulationConfig, simulate
from stream_runs import (assert_same_outcome, expected_backlog, namespace, publish, read_outcome, run_settings,
                         wait_worker)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CFG = SimulationConfig(communes=69, dossiers=4_500, seed=3112, start=date(2026, 11, 2), days=20)  # ~24,500 events


def test_replay_settings_default_to_a_fresh_app_id_and_suffixed_topics(kafka_settings):
    rs = replay_ops.replay_settings(kafka_settings, stamp="20261123T101500Z")
    assert rs.app_id == f"{kafka_settings.app_id}-replay-20261123T101500Z"
    assert rs.clock == "event" and rs.web_port == 0
    assert (rs.topic_metrics, rs.topic_alerts, rs.topic_dlq) == tuple(
        f"{t}.replay-20261123T101500Z" for t in (kafka_settings.topic_metrics, kafka_settings.topic_alerts,
                                                 kafka_settings.topic_dlq))
    assert rs.topic_events == kafka_settings.topic_events
    in_place = replay_ops.replay_settings(kafka_settings, stamp="x", in_place=True)
    assert (in_place.topic_metrics, in_place.topic_alerts) == (kafka_settings.topic_metrics,
                                                              kafka_settings.topic_alerts)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch):
    """Point ``get_settings()`` (what the CLI reads) at the given settings for one test."""
    def use(settings):
        for name, value in settings_env(settings).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
    yield use
    get_settings.cache_clear()


def test_replay_reproduces_the_live_counters_and_alert_ids(kafka_settings, tmp_path, cli_env):
    ns = namespace(kafka_settings, "replay", tmp_path / "ns")
    evs = list(simulate(CFG))
    live = run_settings(ns, "live", tmp_path / "live")
    worker = Services(live)
    try:
        worker.start("worker", "worker")
        publish(ns, evs)
        wait_worker(live, worker, timeout=240)
    finally:
        worker.stop_all()

    cli = typer.Typer()
    cli.callback()(lambda: None)  # keep `replay` a sub-command, as under `onestop`
    replay_cli.register(cli)
    cli_env(live)
    run = CliRunner().invoke(cli, ["replay", "--compare", "--app-id", "it-replay-again", "--suffix", ".replay-it",
                                   "--timeout", "240"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    said = " ".join(run.output.split())
    assert "same counters and alert ids as the live topics" in said and "events/s" in said

    replayed = replay_ops.replay_settings(live, app_id="it-replay-again", suffix=".replay-it")
    got, want = read_outcome(replayed), read_outcome(live)
    assert_same_outcome(got, want, "replay vs live run")
    assert len(got.alerts) == len(got.alert_ids)  # a clean run sends every alert once
    assert got.backlog_per_commune() == dict(expected_backlog(evs))
    assert not (replayed.home / "faust" / replayed.app_id).exists()  # its local state is dropped


def test_compare_reports_every_difference():
    cmp = replay_ops.Comparison(counter_diff={("backlog", "18073"): (2, 3)}, missing_alerts={"a"}, extra_alerts=set())
    assert not cmp.ok
    assert replay_ops.Comparison(counter_diff={}, missing_alerts=set(), extra_alerts=set()).ok
