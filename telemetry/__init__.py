"""Prometheus metrics that more than one process of the pipeline exports under the same name.

Defined once here, below every adapter, so that a process running the worker and
a sink together (tests, one-machine deployments) registers each only once, and
so that no adapter imports another one for a metric.
"""
