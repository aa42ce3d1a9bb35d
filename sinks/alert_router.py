"""The alert router: ``dossier.alerts`` → Alertmanager API v2, never lost, never repeated.

One process reads every partition of ``dossier.alerts`` (the topic is small:
one record per alert decision) and keeps the book of active alerts
(``sinks.alert_book``). Per poll:

1. the records are folded into the book (an undecodable one goes to
   ``dossier.dlq``);
2. the dossiers that changed are posted to Alertmanager: their firing alerts,
   and ``endsAt`` = now for what they no longer have; every
   ``router_resend_s`` all active alerts are posted again with ``endsAt`` moved
   ``router_hold_s`` ahead (so Alertmanager never lets a live alert expire, and
   does resolve the alerts of a router that is gone), which is also when
   escalation steps reached since are added;
3. a post Alertmanager cannot take is retried with exponential backoff until
   it is accepted (or the process is stopped); a post it refuses (4xx) is
   split, and only the alerts refused alone go to ``dossier.dlq``;
4. only then are the consumed offsets committed.

Posting is idempotent: Alertmanager knows an alert by its labels, so posting
the same labels again updates the alert and notifies nobody.

**Restart.** The book is rebuilt by reading ``dossier.alerts`` from the
beginning to its end: the topic is compacted by dossier, so it is its own
snapshot (the latest decision of every dossier survives compaction). The
rebuilt book is posted whole (the same labels: no new notification), the
alerts Alertmanager still holds for dossiers that are no longer active are
ended, and reading goes on from there.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from tenacity import Retrying, retry_if_exception_type, wait_exponential

from onestop import dlq
from onestop.catalogue import load_catalogue
from onestop.settings import Settings
from onestop.workcal import load_calendar
from sinks import metrics as m
from sinks.alert_book import AlertBook, Posting
from sinks.alert_messages import parse_escalation
from sinks.alertmanager import AlertmanagerClient, AlertmanagerRejected, AlertmanagerUnavailable
from sinks.topic_config import warn_unless_kept
from onestop.wire import decode_alert

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode


class RouterStopped(Exception):
    """Stopped while Alertmanager had not yet accepted a post: nothing of it is committed."""


class AlertmanagerRestarted(Exception):
    """Alertmanager restarted while a post was being retried: it holds no alert now."""


def build_book(settings: Settings) -> AlertBook:
    return AlertBook(parse_escalation(settings.router_escalation), load_calendar(settings.calendar_override),
                     load_catalogue(settings.catalogue_file), settings.province_code,
                     timedelta(seconds=settings.router_hold_s))


class AlertRouter:
    def __init__(self, settings: Settings, client: AlertmanagerClient | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.client = client or AlertmanagerClient(settings.alertmanager_url)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.book = build_book(settings)
        self.group = settings.router_group
        self._stop = threading.Event()
        self._dead: list[dlq.DeadLetter] = []
        self._producer: KafkaProducer | None = None
        self._am_started: str | None = None  # Alertmanager's start time at the last post
        self._consumer: KafkaConsumer | None = None

    def stop(self, *_: object) -> None:
        self._stop.set()

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Rebuild, then route until SIGTERM/SIGINT (or ``stop()``)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap.split(","), group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest", client_id="onestop-alert-router",
            max_poll_records=self.settings.router_batch,
        )
        self._consumer = consumer
        try:
            partitions = self._partitions(consumer)
            warn_unless_kept(self.settings, self.settings.topic_alerts)
            consumer.assign(partitions)
            self._rebuild(consumer, partitions)
            next_refresh = time.monotonic() + self.settings.router_resend_s
            while not self._stop.is_set():
                wait_ms = max(0, min(500, int((next_refresh - time.monotonic()) * 1000)))
                records = consumer.poll(timeout_ms=wait_ms)
                self._fold(records)
                now = self.clock()
                if time.monotonic() >= next_refresh:
                    postings = self.book.refresh(now)
                    next_refresh = time.monotonic() + self.settings.router_resend_s
                else:
                    postings = self.book.changes(now)
                self._deliver(postings, now)
                if records:
                    self._commit(consumer, {tp: msgs[-1].offset + 1 for tp, msgs in records.items()})
                m.record_lag(consumer, self.group)
        except RouterStopped:
            log.warning("stopped before Alertmanager accepted every alert; they are not committed and will be "
                        "posted again at the next start")
        finally:
            consumer.close()
            if self._producer is not None:
                self._producer.close()
            self.client.close()
            log.info("alert router stopped")

    def _partitions(self, consumer: KafkaConsumer, timeout: float = 60.0) -> list[TopicPartition]:
        deadline = time.monotonic() + timeout
        topic = self.settings.topic_alerts
        while time.monotonic() < deadline and not self._stop.is_set():
            found = consumer.partitions_for_topic(topic)
            if found:
                return [TopicPartition(topic, p) for p in sorted(found)]
            log.info("waiting for topic %s", topic)
            time.sleep(0.5)
        raise RuntimeError(f"topic {topic} does not exist on {self.settings.kafka_bootstrap}; "
                           "create it first (onestop kafka start creates the pipeline topics)")

    def _rebuild(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Fold the whole topic, post the book, end what Alertmanager holds beyond it, commit."""
        started = time.monotonic()
        committed = {tp: consumer.committed(tp) or 0 for tp in partitions}
        ends = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        behind = {tp for tp in partitions if ends[tp] > 0}
        read = unseen = 0
        while behind and not self._stop.is_set():
            records = consumer.poll(timeout_ms=500, max_records=5000)
            self._fold(records)
            for tp, msgs in records.items():
                read += len(msgs)
                unseen += sum(1 for msg in msgs if msg.offset >= committed[tp])
            behind = {tp for tp in behind if consumer.position(tp) < ends[tp]}
        if self._stop.is_set():
            raise RouterStopped()
        folded = time.monotonic()
        now = self.clock()
        m.UNDELIVERED.set(len(self.book.refresh(now)))
        # What Alertmanager already holds is not new (and keeps its start); what it holds beyond the book ends.
        ends = self.book.adopt(self._retry(self.client.dossier_alerts), now)
        postings = self.book.refresh(now) + ends
        self._deliver(postings, now)
        self._commit(consumer, {tp: consumer.position(tp) for tp in partitions})
        log.info("rebuilt %d active alerts from %d records of %s (%d not yet committed): read in %.2fs, "
                 "%d alerts posted in %.2fs", len(self.book.active), read, self.settings.topic_alerts, unseen,
                 folded - started, len(postings), time.monotonic() - folded)

    def _fold(self, records: dict) -> None:
        for tp, msgs in records.items():
            for msg in msgs:
                try:
                    alert = decode_alert(msg.value)
                    self.book.fold(alert)
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError) as exc:
                    m.ROUTER_REJECTED.labels("malformed_alert").inc()
                    self._dead.append(dlq.dead_letter(msg.value or b"", "malformed_alert", str(exc),
                                                      f"router:{tp.topic}:{tp.partition}@{msg.offset}"))
                    continue
                m.ROUTER_RECORDS.labels(alert.kind).inc()
            m.CONSUMED.labels(self.group, tp.topic).inc(len(msgs))

    def _commit(self, consumer: KafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        self._flush_dead_letters()
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})

    # --- Alertmanager -----------------------------------------------------------------------

    def _deliver(self, postings: list[Posting], now: datetime) -> None:
        """Post ``postings`` until Alertmanager has taken them all, then tell the book.

        Alertmanager keeps its alerts in memory only. Once restarted it holds none, and a group that
        first hears of one change (say, one dossier resolved) and of its other alerts only at the next
        re-post would be told twice. So whenever Alertmanager has restarted since the last post (its
        start time changed), everything active is posted at once instead.
        """
        if not postings:
            return
        m.UNDELIVERED.set(len(postings))
        while True:
            if self._alertmanager_restarted():
                log.warning("Alertmanager restarted; posting all %d active dossiers again", len(self.book.active))
                postings = self.book.refresh(now)
            try:
                self._deliver_chunks(postings, now)
                break
            except AlertmanagerRestarted:
                continue
        self._update_gauges()

    def _alertmanager_restarted(self) -> bool:
        started = self._retry(self.client.status).get("uptime")
        restarted = self._am_started is not None and started != self._am_started
        self._am_started = started
        return restarted

    def _deliver_chunks(self, postings: list[Posting], now: datetime) -> None:
        size = self.settings.router_batch
        m.UNDELIVERED.set(len(postings))
        for start in range(0, len(postings), size):
            chunk = postings[start:start + size]
            try:
                self._post(chunk)
                refused: list[Posting] = []
            except AlertmanagerRejected as exc:
                refused = self._post_refused(chunk, exc)
            taken = [p for p in chunk if p not in refused]
            self._count(taken, now)
            self.book.accepted(taken, now)
            m.UNDELIVERED.set(max(0, len(postings) - start - len(chunk)))

    def _post_refused(self, chunk: list[Posting], exc: AlertmanagerRejected) -> list[Posting]:
        """Post a refused chunk alert by alert; the ones refused alone go to the DLQ. Returns those."""
        if len(chunk) == 1:
            self._reject(chunk[0], exc)
            return chunk
        log.warning("Alertmanager refused a post of %d alerts (%s); posting them one by one", len(chunk), exc)
        refused = []
        for posting in chunk:
            try:
                self._post([posting])
            except AlertmanagerRejected as alone:
                self._reject(posting, alone)
                refused.append(posting)
        return refused

    def _reject(self, posting: Posting, exc: AlertmanagerRejected) -> None:
        log.error("Alertmanager refused the alert %s: %s; sent to %s", posting.labels, exc, self.settings.topic_dlq)
        m.DELIVERY_FAILURES.labels("rejected").inc()
        m.ROUTER_REJECTED.labels("alertmanager_rejected").inc()
        self._dead.append(dlq.dead_letter(_encode(posting), "alertmanager_rejected", str(exc), "router:alertmanager",
                                          dossier_id=posting.labels.get("dossier_id")))

    def _post(self, chunk: list[Posting]) -> None:
        failed = [False]

        def attempt() -> None:
            if failed[0] and self._alertmanager_restarted():
                raise AlertmanagerRestarted()  # post everything instead (see _deliver)
            failed[0] = True
            started = time.perf_counter()
            self.client.post_alerts(chunk)
            m.POST_SECONDS.observe(time.perf_counter() - started)

        self._retry(attempt)

    def _retry(self, call: Callable):
        """``call()`` until it succeeds; Alertmanager being unavailable is waited out with backoff."""
        retrying = Retrying(
            retry=retry_if_exception_type(AlertmanagerUnavailable),
            wait=wait_exponential(multiplier=0.2, min=0.2, max=self.settings.router_retry_max_s),
            stop=lambda _state: self._stop.is_set(),
            sleep=self._stop.wait,
            before_sleep=self._note_failure,
            reraise=True,
        )
        try:
            return retrying(call)
        except AlertmanagerUnavailable:
            if self._stop.is_set():
                raise RouterStopped() from None
            raise

    def _note_failure(self, state) -> None:
        m.DELIVERY_FAILURES.labels("unavailable").inc()
        if self._consumer is not None and self._consumer.assignment():
            m.record_lag(self._consumer, self.group)  # records keep arriving while we wait
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("Alertmanager unavailable (attempt %d: %s); trying again in %.1fs", state.attempt_number, exc, wait)

    def _count(self, taken: list[Posting], now: datetime) -> None:
        """Metrics of what Alertmanager took; called before the book records it."""
        m.DELIVERED.inc(len(taken))
        m.LAST_DELIVERY.set(time.time())
        for posting in taken:
            name = posting.labels.get("alertname", "")
            if posting.ends(now):
                m.CLEARED.labels(name).inc()
            elif posting.key not in self.book.posted.get(posting.labels.get("dossier_id", ""), {}):
                m.FIRED.labels(name, posting.labels.get("escalation", "")).inc()

    def _update_gauges(self) -> None:
        counts: dict[str, int] = {}
        for alert in self.book.active.values():
            kind = "due_soon" if alert.kind == "due_soon" else "overdue"
            counts[kind] = counts.get(kind, 0) + 1
        for kind in ("due_soon", "overdue"):
            m.ACTIVE.labels(kind).set(counts.get(kind, 0))

    # --- dead letters -----------------------------------------------------------------------

    def _flush_dead_letters(self) -> None:
        if not self._dead:
            return
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap.split(","), acks="all",
                                           client_id="onestop-alert-router")
        for record in self._dead:
            self._producer.send(self.settings.topic_dlq, key=record.dossier_id.encode() if record.dossier_id else None,
                                value=dlq.encode(record))
        self._producer.flush(timeout=60)
        self._dead.clear()


def run_router(settings: Settings) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per post otherwise
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.web_host)
    AlertRouter(settings).run()
