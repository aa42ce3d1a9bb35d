"""The publisher's drain thread: spots outages, then empties the spool into Kafka, oldest first.

``DrainLoop`` is mixed into ``producers.publisher.Publisher`` and works on its
state under its lock (``_cond``). One round of the loop:

1. replace the producer if a delivery failed (every record it held is already
   in the spool), or create one if there is none (bounded by
   ``connect_timeout_ms``);
2. wait until the records still held by the producer are settled (acknowledged
   or failed): they are older than anything in the spool's unsent part;
3. read up to ``drain_batch`` records from the spool's ACK position, skip those
   Kafka acknowledged already, send the rest and wait for the acknowledgements;
4. move the spool's ACK past the acknowledged prefix.

A round that makes no progress doubles the wait before the next one (from
``retry_backoff_s`` up to ``retry_backoff_max_s``). When the spool is empty and
nothing is in flight, the publisher goes back to direct mode.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from kafka import KafkaProducer

from producers.spool import Entry

if TYPE_CHECKING:
    from onestop.settings import Settings
    from producers.settings import PublisherSettings

log = logging.getLogger("producers.publisher")

TICK_S = 0.1  # how often an idle drain thread looks for a stalled record


def new_producer(settings: Settings, ps: PublisherSettings, client_id: str) -> KafkaProducer:
    """kafka-python producer: acks=all, idempotent, bounded blocking and connection time-outs."""
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=256 * 1024,
        compression_type=None,
        max_in_flight_requests_per_connection=5,
        max_block_ms=ps.max_block_ms,
        delivery_timeout_ms=ps.delivery_timeout_ms,
        request_timeout_ms=ps.request_timeout_ms,
        bootstrap_timeout_ms=ps.connect_timeout_ms,
        reconnect_backoff_max_ms=ps.reconnect_backoff_max_ms,
    )


class DrainLoop:
    """Outage detection and spool draining; see the module docstring. Runs in its own thread."""

    _cond: threading.Condition
    _wake: threading.Event
    _stop: threading.Event

    def _run(self) -> None:
        backoff = self.ps.retry_backoff_s
        while not self._stop.is_set():
            self._wake.wait(backoff if self._spooling else TICK_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._watch()
                progressed = self._drain_round() if self._spooling else True
            except Exception:  # the drain thread must survive anything; the spool keeps the records
                log.exception("%s: drain round failed", self.client_id)
                progressed = False
            backoff = self.ps.retry_backoff_s if progressed else min(backoff * 2, self.ps.retry_backoff_max_s)
            if progressed and self._spooling:
                self._wake.set()  # more to drain: go on at once

    def _watch(self) -> None:
        """Spot an outage while publishers are idle: a failed delivery or a stalled record."""
        with self._cond:
            if self._closed:
                return
            if self._failure is not None:
                self._enter_spooling(self._why())
            elif not self._spooling and self._inflight:
                oldest = next(iter(self._inflight.values()))
                if time.monotonic() - oldest.since > self.ps.stall_timeout_s:
                    self._enter_spooling(f"no acknowledgement for {self.ps.stall_timeout_s:g}s")
            if self.ps.fsync == "interval":
                self.spool.sync()

    def _drain_round(self) -> bool:
        """Send one batch of the spool and advance its ACK; False if Kafka is still unreachable."""
        producer = self._ensure_producer()
        if producer is None or not self._wait_settled(self.ps.retry_backoff_s):
            return False
        with self._cond:
            if self._closed or self._failure is not None:
                return False
            entries = self.spool.read(self.ps.drain_batch)
            if not entries:
                if self.spool.depth == 0 and not self._inflight:
                    self._leave_spooling()
                return True
            batch = [e.record for e in entries if e.record.n not in self._acked_spooled]
            for record in batch:
                self._track(record, spooled=True)
        for record in batch:
            if not self._send(producer, record, direct=False):
                break
        self._wait_settled(self.ps.request_timeout_ms / 1000)
        with self._cond:
            return not self._closed and self._advance(entries) > 0

    def _advance(self, entries: list[Entry]) -> int:
        """Move the spool's ACK past the acknowledged prefix of ``entries``. Lock held."""
        count, end = 0, None
        for entry in entries:
            if entry.record.n not in self._acked_spooled:
                break
            self._acked_spooled.discard(entry.record.n)
            count, end = count + 1, entry.end
        if end is not None:
            self.spool.ack(end, count)
            self._update_gauges()
        return count

    def _wait_settled(self, timeout: float) -> bool:
        """Wait until no record is in flight; False on timeout, a delivery failure or shutdown."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._inflight and self._failure is None and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return not self._inflight and self._failure is None

    def _ensure_producer(self) -> KafkaProducer | None:
        """The producer to drain with: replace one that failed, create one if there is none."""
        with self._cond:
            old = None
            if self._failure is not None:
                self._enter_spooling(self._why())  # everything it holds is in the spool now
                old, self._producer = self._producer, None
                self._inflight.clear()
                self._inflight_bytes = 0
                self._failure = None
            producer = self._producer
        if old is not None:
            abandon(old)
        if producer is not None:
            return producer
        try:
            producer = new_producer(self.settings, self.ps, self.client_id)
        except Exception as exc:
            log.info("%s: Kafka still unreachable: %s", self.client_id, exc)
            return None
        with self._cond:
            closed = self._closed
            if not closed:
                self._producer = producer
        if closed:
            abandon(producer)
            return None
        return producer


def abandon(producer: KafkaProducer) -> None:
    """Close a producer now, dropping what it still holds (those records are in the spool)."""
    try:
        producer.close(timeout=0)
    except Exception:
        # kafka-python 3.0 flushes inside close() and raises if a batch is pending, leaving the
        # I/O thread running; stop it without sending (the pinned version's own force-close path).
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(5)
        producer._closed = True  # noqa: SLF001
        producer._unregister_cleanup()  # noqa: SLF001
