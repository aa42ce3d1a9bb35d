"""Metrics exported by several processes (the worker, the sinks, the gateway)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

DLQ = Counter("onestop_dlq_records_total", "Records sent to the dead-letter topic", ["reason", "source"])
# Every consumer group (the worker, the sink, the alert router) reports under the same names.
CONSUMED = Counter("onestop_consumed_records", "Records a consumer group has handled, by topic.", ["group", "topic"])
LAG = Gauge("onestop_consumer_lag_records", "Records between a consumer group's position and the end of a partition.",
            ["group", "topic", "partition"])
