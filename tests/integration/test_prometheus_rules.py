"""A real Prometheus scrapes the running worker and alert router and evaluates the deployment's rules.

The rules are deploy/prometheus/rules with their ``for:`` delays removed (same expressions), so
that a condition that holds fires within seconds. The router is pointed at a port where no
Alertmanager listens, so it fails to deliver; a junk record goes to the DLQ; Prometheus sends
what fires to a real Alertmanager, whose routing tree delivers it to the local webhook.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, time as clock_time, timezone

import holidays
import pytest

from ops.services import Services
from ops.lag import wait_caught_up
from onestop.workcal import VN_TZ
from producers.publisher import Publisher
from producers.simulator import SimulationConfig, simulate
from tests.integration.conftest import free_ports
from tests.monitoring import (Alertmanager, Prometheus, Webhook, local_config, needs_alertmanager, needs_prometheus,
                              overdue, publish_alerts, rules_without_delays, wait_for)

pytestmark = [pytest.mark.integration, needs_prometheus, needs_alertmanager, pytest.mark.timeout(400)]

FINISHING = {"result_ready", "result_returned", "withdrawal_requested", "processing_stopped", "refused",
             "refused_at_reception"}


def expected_backlog(evs) -> Counter:
    """Open dossiers per handling commune, folded here independently of the worker."""
    kinds: dict[str, set[str]] = {}
    handling: dict[str, str] = {}
    for e in evs:
        kinds.setdefault(e.dossier_id, set()).add(e.event_type.value)
        handling[e.dossier_id] = e.handling_commune_code or handling.get(e.dossier_id) or e.commune_code
    return Counter(handling[d] for d, k in kinds.items() if "accepted" in k and not k & FINISHING)


def working_now(at: datetime) -> bool:
    """Office hours of a Vietnamese working day, from the holidays package directly (make-up days included)."""
    local = at.astimezone(VN_TZ)
    day = local.date()
    vn = holidays.country_holidays("VN", years=day.year)
    weekday = day.weekday() < 5 or day in vn.weekend_workdays
    hours = clock_time(7, 30) <= local.time() < clock_time(11, 30) or clock_time(13) <= local.time() < clock_time(17)
    return weekday and day not in vn and hours


@pytest.fixture(scope="module")
def monitored(isolate, tmp_path_factory):
    home = tmp_path_factory.mktemp("prometheus-it")
    webhook = Webhook()
    am = Alertmanager(home / "alertmanager", local_config(webhook)).start()
    dead, worker_port, router_port = free_ports(3)
    settings = isolate("prom", home=home, app_id="onestop-it-prom", clock="event", web_port=0,
                       router_group="onestop-it-prom-router", alertmanager_url=f"http://127.0.0.1:{dead}",
                       router_resend_s=1.0, router_hold_s=60.0, router_retry_max_s=1.0)
    worker = Services(settings.model_copy(update={"metrics_port": worker_port}))
    router = Services(settings.model_copy(update={"metrics_port": router_port, "home": home / "router"}))
    prometheus = Prometheus(home / "prometheus", {"onestop-worker": f"127.0.0.1:{worker_port}",
                                                  "onestop-alert-router": f"127.0.0.1:{router_port}"},
                            rules_without_delays(home / "rules"), f"127.0.0.1:{am.port}")
    evs = list(simulate(SimulationConfig(communes=3, dossiers=120, seed=13, start=date(2026, 11, 2), days=5)))
    try:
        publish_alerts(settings, [overdue("P1", "18754")])  # an alert the router must deliver, and cannot
        worker.start("worker", "worker")
        router.start("router", "alerts", "run")
        prometheus.start()
        published = time.time()
        with Publisher(settings) as pub:
            pub.publish_many(evs)
            pub.publish_raw(b"junk", b"{not json")
        wait_caught_up(settings, {settings.app_id: [settings.topic_events]}, timeout=180, settle=3.0,
                       on_poll=lambda _: worker.check_alive())
        wait_for(lambda: {"OnestopDlqRecords", "OnestopAlertRouterFailing"} <= prometheus.firing(), 120,
                 "the DLQ and router rules to fire")
        wait_for(lambda: {"OnestopDlqRecords", "OnestopAlertRouterFailing"} <= {
            a["labels"]["alertname"] for n in webhook.snapshot() if n.receiver == "ioc-webhook" for a in n.alerts},
            60, "Alertmanager to deliver them")
        time.sleep(3)  # a few more scrapes of the refreshed gauges
        yield prometheus, evs, webhook, published
    finally:
        prometheus.stop()
        worker.stop_all()
        router.stop_all()
        am.stop()
        webhook.close()


def test_the_dlq_and_router_rules_fire_on_the_running_pipeline(monitored):
    prometheus, *_ = monitored
    alerts = {a["labels"]["alertname"]: a for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"}
    assert alerts["OnestopDlqRecords"]["labels"]["reason"] == "malformed_json"
    assert alerts["OnestopAlertRouterFailing"]["labels"]["job"] == "onestop-alert-router"


def test_what_fires_reaches_the_ioc_receiver_through_alertmanager(monitored):
    _, _, webhook, _ = monitored
    delivered = {a["labels"]["alertname"] for n in webhook.snapshot() if n.receiver == "ioc-webhook" for a in n.alerts}
    assert {"OnestopDlqRecords", "OnestopAlertRouterFailing"} <= delivered


def test_every_rule_evaluates_without_error_on_the_real_series(monitored):
    prometheus, *_ = monitored
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert len(rules) == 13
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_working_time_is_scraped_from_the_domain_calendar(monitored):
    prometheus, *_ = monitored
    before = datetime.now(timezone.utc)
    [sample] = prometheus.query('onestop_working_time{job="onestop-worker"}')
    after = datetime.now(timezone.utc)
    assert sample["metric"]["province_code"] == "42"
    assert float(sample["value"][1]) in {float(working_now(before)), float(working_now(after))}


def test_the_silent_commune_join_gives_each_communes_working_time_since_its_last_event(monitored):
    prometheus, evs, _, published = monitored
    elapsed = time.time() - published
    result = prometheus.query(
        "max by (province_code) (onestop_working_clock_seconds) - on (province_code) group_right "
        "max by (province_code, commune_code) (onestop_commune_last_event_working_clock_seconds)")
    silent = {r["metric"]["commune_code"]: float(r["value"][1]) for r in result}
    assert set(silent) == {e.commune_code for e in evs}
    assert all(0 <= v <= elapsed + 5 for v in silent.values()), silent


def test_backlog_per_commune_and_lag_per_partition_are_scraped(monitored):
    prometheus, evs, *_ = monitored
    backlog = prometheus.query('sum by (commune_code) (onestop_backlog_dossiers{job="onestop-worker"})')
    got = {r["metric"]["commune_code"]: int(float(r["value"][1])) for r in backlog}
    assert {c: n for c, n in got.items() if n} == dict(expected_backlog(evs))
    lag = prometheus.query('onestop_consumer_lag_records{job="onestop-worker",topic=~"dossier.events.*"}')
    assert len(lag) == 12 and all(float(r["value"][1]) == 0 for r in lag)
