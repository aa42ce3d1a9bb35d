"""Metrics that more than one process of the pipeline exports under the same name.

Defined once here, so that a process running the worker and a sink together
(tests, one-machine deployments) registers each only once.
"""

from __future__ import annotations

from prometheus_client import Counter

DLQ = Counter("onestop_dlq_records_total", "Records sent to the dead-letter topic", ["reason", "source"])
