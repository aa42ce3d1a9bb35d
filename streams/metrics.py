"""Prometheus metrics of the worker, beyond the counters ``streams.app`` keeps inline.

What the rules in deploy/prometheus/rules need from the worker:

- records in (``onestop_consumed_records_total``), out (``onestop_produced_records_total``) and
  the consumer lag of every assigned partition (``onestop_consumer_lag_records``);
- batch processing time and record delay (histograms);
- backlog and overdue dossiers per commune, from the worker's own counters;
- the time of the last event from each commune, both as Unix time and as a reading of the
  province's working clock (``onestop.workclock``), and the working clock itself with
  ``onestop_working_time`` (1 in office hours of a working day): the silent-commune rule
  subtracts the two readings, so it counts working hours by the domain calendar.

Gauges are refreshed by a Faust timer, in the event loop, from what the agent recorded: the
agent itself only does a dict update per record.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import msgspec
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from onestop.communes import commune
from onestop.settings import Settings
from onestop.workcal import load_calendar
from onestop.workclock import WorkingClock
from streams.model import StoredDossier
from telemetry.shared import CONSUMED, LAG  # noqa: F401  (the same series for every consumer group)
from streams.processor import Effects, Processor

if TYPE_CHECKING:
    import faust

REFRESH_S = 5.0

# Shared with the sinks' consumers (sinks.metrics imports these two): one definition per process.
PRODUCED = Counter("onestop_produced_records", "Records the worker wrote to Kafka, by topic.", ["topic"])
BATCH_SECONDS = Histogram("onestop_worker_batch_seconds", "Time to fold a batch and write everything it caused.",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RECORD_DELAY = Histogram("onestop_worker_record_delay_seconds",
                         "From a record's Kafka timestamp to the end of its batch (the batch's last record).",
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800))
BACKLOG = Gauge("onestop_backlog_dossiers", "Open dossiers of a handling commune, by SLA bucket.",
                ["province_code", "commune_code", "sla"])
OVERDUE = Gauge("onestop_overdue_dossiers", "Open overdue dossiers of a handling commune.",
                ["province_code", "commune_code"])
LAST_EVENT = Gauge("onestop_commune_last_event_timestamp_seconds",
                   "When the last event from a commune reached Kafka (Unix time).", ["province_code", "commune_code"])
LAST_EVENT_WORKING = Gauge("onestop_commune_last_event_working_clock_seconds",
                           "The province's working clock when the last event from a commune reached Kafka.",
                           ["province_code", "commune_code"])
SLA_BUCKETS = ("within_due", "due_soon", "overdue")


class _Origin(msgspec.Struct):
    commune_code: str = ""


_origin = msgspec.json.Decoder(_Origin)


class WorkingTimeCollector(Collector):
    """``onestop_working_time`` and ``onestop_working_clock_seconds`` of the province, read at scrape time."""

    def __init__(self, settings: Settings, now: Callable[[], datetime] | None = None) -> None:
        self.province = settings.province_code
        self.clock = WorkingClock(load_calendar(settings.calendar_override))  # its own: scrapes run in a thread
        self.now = now or (lambda: datetime.now(timezone.utc))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.now()
        working = GaugeMetricFamily("onestop_working_time", "1 in office hours of a working day by the domain "
                                    "calendar (holidays, make-up days, overrides), else 0.", labels=["province_code"])
        working.add_metric([self.province], 1.0 if self.clock.is_working(now) else 0.0)
        reading = GaugeMetricFamily("onestop_working_clock_seconds", "Working seconds since 2020-01-01 by the "
                                    "domain calendar: differences are working time.", labels=["province_code"])
        reading.add_metric([self.province], self.clock.seconds(now))
        yield working
        yield reading


class WorkerMetrics:
    def __init__(self, settings: Settings, processor: Processor) -> None:
        self.settings = settings
        self.processor = processor
        self.clock = WorkingClock(load_calendar(settings.calendar_override))
        self.last_event: dict[str, float] = {}  # commune → latest Kafka timestamp (Unix seconds)
        self.read: dict[int, int] = {}  # partition → next offset to read
        self._shown: set[tuple[str, ...]] = set()
        self._provinces: dict[str, str] = {}
        self._consumed = CONSUMED.labels(settings.app_id, settings.topic_events)

    # --- called by the agent -----------------------------------------------------------------

    def event(self, partition: int, offset: int, raw: bytes | None, timestamp: float | None) -> None:
        self._consumed.inc()
        self.read[partition] = offset + 1
        try:
            code = _origin.decode(raw or b"").commune_code
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if code and timestamp and timestamp > self.last_event.get(code, 0.0):
            self.last_event[code] = timestamp

    def seen_stored(self, stored: Iterable[StoredDossier]) -> Iterator[StoredDossier]:
        """Pass the state table through on rebuild, remembering each commune's latest event."""
        for s in stored:
            at = s.state.last_event_at
            if at is not None:
                stamp = at.timestamp()
                if stamp > self.last_event.get(s.state.commune_code, 0.0):
                    self.last_event[s.state.commune_code] = stamp
            yield s

    def batch_done(self, started: float, fx: Effects, writes: int, last_timestamp: float | None) -> None:
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if last_timestamp:
            RECORD_DELAY.observe(max(0.0, time.time() - last_timestamp))
        if fx.alerts:
            PRODUCED.labels(self.settings.topic_alerts).inc(len(fx.alerts))
        if fx.dead_letters:
            PRODUCED.labels(self.settings.topic_dlq).inc(len(fx.dead_letters))
        if writes:
            PRODUCED.labels("changelog").inc(writes)

    # --- the timer ---------------------------------------------------------------------------

    def province(self, code: str) -> str:
        found = self._provinces.get(code)
        if found is None:
            place = commune(code)
            found = self._provinces[code] = place.province_code if place else self.settings.province_code
        return found

    def refresh(self, app: "faust.App") -> None:
        self._backlog()
        self.refresh_communes()
        self._lag(app)

    def refresh_communes(self) -> None:
        for code, stamp in list(self.last_event.items()):
            province = self.province(code)
            LAST_EVENT.labels(province, code).set(stamp)
            LAST_EVENT_WORKING.labels(province, code).set(
                self.clock.seconds(datetime.fromtimestamp(stamp, timezone.utc)))

    def _backlog(self) -> None:
        counts: dict[tuple[str, str], int] = {}
        for per_partition in list(self.processor.counters.counts.values()):
            for key, n in list(per_partition.items()):
                if key[0] == "backlog" and n:
                    counts[(key[1], key[5])] = counts.get((key[1], key[5]), 0) + n
        communes = {c for c, _ in counts} | {c for c, _ in self._shown}
        for code in communes:
            province = self.province(code)
            for sla in SLA_BUCKETS:
                BACKLOG.labels(province, code, sla).set(counts.get((code, sla), 0))
            OVERDUE.labels(province, code).set(counts.get((code, "overdue"), 0))
        self._shown = set(counts) | self._shown

    def _lag(self, app: "faust.App") -> None:
        topic, group = self.settings.topic_events, self.settings.app_id
        committed = getattr(app.consumer, "_committed_offset", {})
        for tp in app.assignor.assigned_actives():
            if tp.topic != topic:
                continue
            end = app.consumer.highwater(tp) or 0
            done = max(self.read.get(tp.partition, 0), (committed.get(tp) or 0))
            LAG.labels(group, topic, str(tp.partition)).set(max(0, end - done))


def install(app: "faust.App", settings: Settings, processor: Processor) -> WorkerMetrics:
    """The worker's metrics, refreshed every few seconds by a timer of ``app``."""
    worker_metrics = WorkerMetrics(settings, processor)

    @app.timer(interval=REFRESH_S)
    async def refresh_metrics() -> None:
        worker_metrics.refresh(app)

    return worker_metrics


def register_working_time(settings: Settings) -> None:
    """Export the working-time gauges from this process (once per process)."""
    REGISTRY.register(WorkingTimeCollector(settings))
