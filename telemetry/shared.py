"""Metrics exported by several processes (the worker, the sinks, the gateway)."""

from __future__ import annotations

from prometheus_client import Counter

DLQ = Counter("onestop_dlq_records_total", "Records sent to the dead-letter topic", ["reason", "source"])
