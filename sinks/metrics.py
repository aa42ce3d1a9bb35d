"""Prometheus metrics of the sink processes: the ClickHouse writer and the alert router.

Each process serves them on loopback ``/metrics`` (``ONESTOP_METRICS_PORT``);
the rules in deploy/prometheus/rules use them. docs/alerting.md lists every
metric of the pipeline.
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer
from prometheus_client import Counter, Gauge, Histogram

from telemetry.shared import CONSUMED, LAG  # the same series for every consumer group

__all__ = ["CONSUMED", "LAG"]

# The ClickHouse writer.
SINK_WRITE_SECONDS = Histogram("onestop_sink_write_seconds", "Time to write one poll's records to ClickHouse.",
                               buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SINK_FAILURES = Counter("onestop_sink_write_failures", "Polls whose write to ClickHouse failed, by error.", ["error"])

# The alert router.
ROUTER_RECORDS = Counter("onestop_router_records", "Records read from dossier.alerts, by alert kind.", ["kind"])
ROUTER_REJECTED = Counter("onestop_router_rejected",
                          "Records or alerts the router sent to dossier.dlq instead of Alertmanager, by reason.",
                          ["reason"])
FIRED = Counter("onestop_router_alerts_fired", "Alerts Alertmanager accepted as newly firing.",
                ["alertname", "escalation"])
CLEARED = Counter("onestop_router_alerts_cleared", "Alerts the router ended in Alertmanager.", ["alertname"])
DELIVERED = Counter("onestop_router_alerts_delivered", "Alerts (new, re-posted or ended) Alertmanager accepted.")
DELIVERY_FAILURES = Counter("onestop_router_delivery_failures", "Failed posts to Alertmanager, by kind of failure.",
                            ["reason"])
POST_SECONDS = Histogram("onestop_router_post_seconds", "Time of one post that Alertmanager accepted.",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
UNDELIVERED = Gauge("onestop_router_undelivered_alerts", "Alerts waiting for Alertmanager to accept them.")
ACTIVE = Gauge("onestop_router_active_alerts", "Active dossier alerts in the router's book, by kind.", ["kind"])
LAST_DELIVERY = Gauge("onestop_router_last_delivery_timestamp_seconds",
                      "When Alertmanager last accepted a post (Unix time).")

# Born at zero, so that the rules' increase() sees the first failure.
for _reason in ("unavailable", "rejected"):
    DELIVERY_FAILURES.labels(_reason)
for _reason in ("malformed_alert", "alertmanager_rejected"):
    ROUTER_REJECTED.labels(_reason)


def record_lag(consumer: KafkaConsumer, group: str) -> int:
    """Set the lag gauge of every assigned partition; returns the total."""
    assigned = list(consumer.assignment())
    if not assigned:
        return 0
    ends = consumer.end_offsets(assigned)
    total = 0
    for tp in assigned:
        lag = max(0, (ends.get(tp) or 0) - (consumer.position(tp) or 0))
        LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
        total += lag
    return total


class writing:
    """Around one poll's write to ClickHouse: its time, its records per topic, or its failure."""

    def __init__(self, records: dict, group: str) -> None:
        self.records, self.group = records, group

    def __enter__(self) -> "writing":
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is not None:
            SINK_FAILURES.labels(kind.__name__).inc()
            return
        SINK_WRITE_SECONDS.observe(time.perf_counter() - self.started)
        for tp, msgs in self.records.items():
            CONSUMED.labels(self.group, tp.topic).inc(len(msgs))
