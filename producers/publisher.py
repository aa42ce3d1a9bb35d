"""The one Kafka publisher every producer uses: kafka-python, acks=all, idempotent, keyed by dossier_id.

Communes sit on weak networks, so losing events at the edge is the failure
that matters most. When Kafka cannot be reached the publisher keeps events in
an on-disk spool (``producers.spool``) and sends them later, in order:

* **Direct mode.** ``publish`` hands the record to kafka-python and remembers
  it until Kafka acknowledges it. Unacknowledged records are bounded
  (``buffer_bytes``); a full buffer makes ``publish`` wait at most
  ``max_block_ms``, then spool. ``publish`` never blocks forever.
* **Outage.** A failed or timed-out ``send``, a producer that cannot connect,
  a delivery failure, or a record left unacknowledged for ``stall_timeout_s``
  switches to spool mode: every unacknowledged record is appended to the
  spool (in publish order) and so is every new record, so a dossier's events
  keep their order.
* **Drain.** A background thread (one per publisher) retries with back-off.
  Once the records still held by the producer are settled and Kafka answers,
  it sends the spool oldest first in batches of ``drain_batch``, waits for the
  acknowledgements, and only then moves the spool's ACK pointer (segments are
  deleted once wholly acknowledged). When the spool is empty, new records go
  directly to Kafka again. ``flush`` waits for the drain.

Delivery is at-least-once: a record acknowledged by Kafka in the instant its
producer is abandoned, or acknowledged before a crash that came before the ACK
was written, is sent again. Downstream deduplicates by ``event_id``.
See docs/publisher.md.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterable

from kafka import KafkaProducer
from kafka.errors import IllegalStateError, KafkaTimeoutError, MessageSizeTooLargeError
from prometheus_client import Counter, Gauge

from onestop import dlq, events
from onestop.lateness import SPOOLED_HEADER
from onestop.settings import Settings
from producers.drain import DrainLoop, abandon, new_producer
from producers.settings import PublisherSettings
from producers.spool import Spool, SpoolRecord

log = logging.getLogger(__name__)

SENT = Counter("onestop_publisher_sent", "Records handed directly to Kafka (not through the spool).", ["client"])
SPOOLED = Counter("onestop_publisher_spooled", "Records written to the on-disk spool.", ["client"])
DRAINED = Counter("onestop_publisher_drained", "Spooled records that Kafka acknowledged.", ["client"])
SPOOL_DEPTH = Gauge("onestop_publisher_spool_depth", "Records in the spool not yet acknowledged by Kafka.",
                    ["client"])
SPOOLING = Gauge("onestop_publisher_spooling", "1 while new records go to the spool (Kafka unreachable).",
                 ["client"])

MAX_RECORD_BYTES = 1024 * 1024 - 4096  # kafka-python's max_request_size less the batch overhead
Headers = tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]
_SPOOLED = (SPOOLED_HEADER, b"1")


class PublisherTimeout(KafkaTimeoutError):
    """``flush`` ran out of time; the records it waited for are in flight or safe in the spool."""


@dataclass(frozen=True)
class PublisherStats:
    published: int  # records given to publish/publish_raw/dead_letter
    sent: int  # handed directly to Kafka
    spooled: int  # written to the spool (including copies of records still held by the producer)
    drained: int  # spooled records that Kafka acknowledged
    delivered: int  # records Kafka acknowledged, however they got there
    dead_lettered: int
    spool_depth: int  # in the spool, not yet acknowledged
    spooling: bool


@dataclass
class _Pending:
    record: SpoolRecord
    size: int
    since: float
    spooled: bool = False


def _size(record: SpoolRecord) -> int:
    return len(record.value) + (len(record.key) if record.key else 0)


class Publisher(DrainLoop):
    """Publishes dossier events and dead letters, through the spool whenever Kafka is unreachable.

    Per-dossier order holds because every event of a dossier has the same key
    (hence the same partition), the idempotent producer keeps order on retry,
    and the spool is drained in publish order before anything new is sent.
    """

    def __init__(self, settings: Settings, *, client_id: str = "onestop-producer",
                 publisher_settings: PublisherSettings | None = None) -> None:
        self.settings = settings
        self.client_id = client_id
        self.ps = ps = publisher_settings or PublisherSettings()
        directory = ps.spool_root(settings) / re.sub(r"[^A-Za-z0-9._-]", "_", client_id)
        self.spool = Spool(directory, fsync=ps.fsync, fsync_interval=ps.fsync_interval_s,
                           segment_bytes=ps.segment_bytes)
        self._cond = threading.Condition(threading.RLock())
        self._wake, self._stop = threading.Event(), threading.Event()
        self._inflight: dict[int, _Pending] = {}
        self._inflight_bytes = 0
        self._acked_spooled: set[int] = set()
        self._failure: BaseException | None = None  # a delivery failed: the producer must be replaced
        self._next_n = self.spool.max_n + 1
        self._counts = dict.fromkeys(("published", "sent", "spooled", "drained", "delivered", "dead_lettered"), 0)
        self._closed = False
        self._spooling = self.spool.depth > 0  # left over from an earlier run: it goes first
        self._producer: KafkaProducer | None = None
        self._metric_labels = {"client": client_id}
        try:
            self._producer = new_producer(settings, ps, client_id)
        except Exception as exc:  # kafka-python raises KafkaTimeoutError, NoBrokersAvailable, ...
            with self._cond:
                self._enter_spooling(f"cannot connect to {settings.kafka_bootstrap}: {exc}")
        self._update_gauges()
        self._thread = threading.Thread(target=self._run, name=f"publisher-drain[{client_id}]", daemon=True)
        self._thread.start()

    # ---- public API ----------------------------------------------------------------------------

    def publish(self, event: events.DossierEvent, *, headers: Headers = ()) -> None:
        self._submit(self.settings.topic_events, event.dossier_id.encode(), events.encode(event), headers=headers)

    def publish_raw(self, key: bytes | None, value: bytes, *, headers: Headers = ()) -> None:
        """Forward bytes as received (the gateway and importer validate first)."""
        self._submit(self.settings.topic_events, key, value, headers=headers)

    def publish_many(self, batch: Iterable[events.DossierEvent]) -> int:
        """Publish in order; spooled records are made durable once for the whole batch."""
        n = 0
        try:
            for event in batch:
                self._submit(self.settings.topic_events, event.dossier_id.encode(), events.encode(event), sync=False)
                n += 1
        finally:
            with self._cond:
                if not self._closed:
                    self.spool.sync()
        return n

    def dead_letter(self, record: dlq.DeadLetter) -> None:
        key = record.dossier_id.encode() if record.dossier_id else None
        self._submit(self.settings.topic_dlq, key, dlq.encode(record))
        with self._cond:
            self._counts["dead_lettered"] += 1

    def flush(self, timeout: float | None = 60.0, *, durable_ok: bool = False) -> None:
        """Wait until Kafka acknowledged everything published so far, the spool included.

        With ``durable_ok`` it is enough that every record is acknowledged or fsynced in the
        spool. Raises ``PublisherTimeout`` when ``timeout`` runs out; nothing is lost then.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._cond:
            while not self._settled(durable_ok):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise PublisherTimeout(
                        f"Kafka did not acknowledge everything within {timeout:g}s: {len(self._inflight)} "
                        f"record(s) in flight, {self.spool.depth} in the spool {self.spool.directory}")
                self._cond.wait(0.2 if remaining is None else min(remaining, 0.2))

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``close_timeout_s``), stop the drain thread and close; leftovers stay spooled."""
        if self._closed:
            return
        try:
            self.flush(self.ps.close_timeout_s if timeout is None else timeout)
        except PublisherTimeout as exc:
            log.warning("%s: closing before Kafka acknowledged everything: %s", self.client_id, exc)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=self.ps.connect_timeout_ms / 1000 + self.ps.max_block_ms / 1000 + 5)
        with self._cond:
            if any(not p.spooled for p in self._inflight.values()):
                self._enter_spooling("closing with records unacknowledged")
            producer, self._producer = self._producer, None
            self._closed = True
            self._inflight.clear()
            self.spool.close()
        if producer is not None:
            abandon(producer)
        if self.spool.depth:
            log.warning("%s: %d record(s) remain in the spool %s; the next publisher with this client_id "
                        "sends them", self.client_id, self.spool.depth, self.spool.directory)

    @property
    def stats(self) -> PublisherStats:
        with self._cond:
            return PublisherStats(**self._counts, spool_depth=self.spool.depth, spooling=self._spooling)

    @property
    def sent(self) -> int:
        return self._counts["sent"]

    @property
    def spooling(self) -> bool:
        return self._spooling

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- publishing ----------------------------------------------------------------------------

    def _submit(self, topic: str, key: bytes | None, value: bytes, *, sync: bool = True,
                headers: Headers = ()) -> None:
        size = len(value) + (len(key) if key else 0)
        if size > MAX_RECORD_BYTES:
            raise MessageSizeTooLargeError(f"record of {size} bytes exceeds {MAX_RECORD_BYTES}")
        with self._cond:
            if self._closed:
                raise IllegalStateError("Publisher already closed")
            record = SpoolRecord(self._next_n, topic, key, value, tuple(headers) or None)
            self._next_n += 1
            self._counts["published"] += 1
            if self._failure is not None or self._producer is None:
                self._enter_spooling(self._why())
            if not self._spooling:
                self._wait_for_room(size)
            if self._spooling:
                self._spool([record], sync=sync)
                return
            producer = self._producer
            self._track(record, spooled=False)
        self._send(producer, record, direct=True)

    def _why(self) -> str:
        return f"delivery failed: {self._failure!r}" if self._failure is not None else "no connection to Kafka"

    def _wait_for_room(self, size: int) -> None:
        """Bounded in-memory buffer: wait up to max_block_ms for acknowledgements, else spool."""
        deadline = time.monotonic() + self.ps.max_block_ms / 1000
        while self._inflight and self._inflight_bytes + size > self.ps.buffer_bytes and not self._spooling:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._enter_spooling(f"{self._inflight_bytes} bytes unacknowledged for {self.ps.max_block_ms} ms")
                return
            self._cond.wait(remaining)

    def _track(self, record: SpoolRecord, *, spooled: bool) -> None:
        size = _size(record)
        self._inflight[record.n] = _Pending(record, size, time.monotonic(), spooled)
        self._inflight_bytes += size

    def _send(self, producer: KafkaProducer, record: SpoolRecord, *, direct: bool) -> bool:
        headers = list(record.headers or ())
        if not direct and not any(name == SPOOLED_HEADER for name, _ in headers):
            headers.append(_SPOOLED)  # late data: this record waited in the spool (docs/publisher.md)
        try:
            future = producer.send(record.topic, key=record.key, value=record.value, headers=headers or None)
        except Exception as exc:  # KafkaTimeoutError (metadata), IllegalStateError (closed), ...
            self._on_error(record.n, exc)
            with self._cond:
                self._enter_spooling(f"send failed: {exc!r}")
            return False
        if direct:
            with self._cond:
                self._counts["sent"] += 1
            SENT.labels(**self._metric_labels).inc()
        future.add_callback(self._on_ack, record.n)
        future.add_errback(self._on_error, record.n)
        return True

    def _spool(self, records: list[SpoolRecord], *, sync: bool = True) -> None:
        self.spool.append(records, sync=sync)
        self._counts["spooled"] += len(records)
        SPOOLED.labels(**self._metric_labels).inc(len(records))
        self._update_gauges()

    def _enter_spooling(self, reason: str) -> None:
        """Copy every unacknowledged record to the spool (publish order) and spool from now on. Lock held."""
        unspooled = [p for _, p in sorted(self._inflight.items()) if not p.spooled]
        if unspooled:
            self._spool([p.record for p in unspooled])
            for p in unspooled:
                p.spooled = True
        if not self._spooling:
            self._spooling = True
            log.warning("%s: Kafka unreachable (%s); spooling to %s", self.client_id, reason, self.spool.directory)
            self._update_gauges()
        self._wake.set()
        self._cond.notify_all()

    def _leave_spooling(self) -> None:
        self._spooling = False
        self._acked_spooled.clear()
        log.warning("%s: spool drained; publishing directly to Kafka again", self.client_id)
        self._update_gauges()
        self._cond.notify_all()

    def _settled(self, durable_ok: bool) -> bool:
        if durable_ok:
            if all(p.spooled for p in self._inflight.values()):
                self.spool.sync(force=True)
                return True
            return False
        return not self._spooling and not self._inflight

    # ---- producer callbacks (kafka-python's sender thread) --------------------------------------

    def _on_ack(self, n: int, _metadata: object) -> None:
        with self._cond:
            pending = self._inflight.pop(n, None)
            if pending is None:
                return  # a producer we abandoned; its record is in the spool
            self._inflight_bytes -= pending.size
            self._counts["delivered"] += 1
            if pending.spooled:
                self._acked_spooled.add(n)
                self._counts["drained"] += 1
                DRAINED.labels(**self._metric_labels).inc()
            self._cond.notify_all()
        if self._spooling and not self._inflight:
            self._wake.set()  # Kafka is answering again: drain now rather than after the back-off

    def _on_error(self, n: int, exc: BaseException) -> None:
        with self._cond:
            if n not in self._inflight:
                return
            if self._failure is None:
                log.warning("%s: Kafka did not take a record: %r", self.client_id, exc)
                self._failure = exc
            self._cond.notify_all()
        self._wake.set()

    def _update_gauges(self) -> None:
        SPOOL_DEPTH.labels(**self._metric_labels).set(self.spool.depth)
        SPOOLING.labels(**self._metric_labels).set(1 if self._spooling else 0)
