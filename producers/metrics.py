"""Prometheus metrics of the ingest gateway beyond its event counters (``producers.gateway.Metrics``).

Request latency, and when each commune's one-stop system last got an event accepted: the
silent-commune rule (deploy/prometheus/rules) watches the worker's view of the same, the gateway's
shows whether a quiet commune still reaches the front door.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Gauge, Histogram

from onestop.communes import commune


class GatewayExtras:
    def __init__(self, registry: CollectorRegistry, default_province: str) -> None:
        self.default_province = default_province
        self.latency = Histogram("onestop_gateway_request_seconds", "Time to answer a request, by route.", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                 registry=registry)
        self.last_event = Gauge("onestop_gateway_commune_last_event_timestamp_seconds",
                                "When the gateway last accepted an event from a commune (Unix time).",
                                ["province_code", "commune_code"], registry=registry)

    def accepted(self, commune_code: str, count: int) -> None:
        if count:
            place = commune(commune_code)
            province = place.province_code if place else self.default_province
            self.last_event.labels(province, commune_code).set(time.time())

    def instrument(self, app: FastAPI) -> None:
        @app.middleware("http")
        async def timed(request: Request, call_next):
            started = time.perf_counter()
            try:
                return await call_next(request)
            finally:
                route = request.scope.get("route")
                self.latency.labels(getattr(route, "path", "other")).observe(time.perf_counter() - started)
