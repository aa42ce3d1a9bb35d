"""What the gateway does with the events of one authenticated request, HTTP aside.

Each event is judged on its own: validated against contract v1, checked to
belong to the sender's commune, admitted by the plausibility policy
(``onestop.admission``: time, due date, procedure), looked up in the recent-ids memory, then
published keyed by ``dossier_id`` (in request order, so a dossier's events keep
their order on its partition). A rejected event gets a machine-readable reason
in the answer *and* a dead letter on ``dossier.dlq``; it never stops the rest
of the batch. Nothing is reported accepted before it is safe: acknowledged by
Kafka (acks=all) or, while Kafka is unreachable, fsynced in the publisher's
on-disk spool, which the publisher drains to Kafka in order (``flush(durable_ok=True)``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

import msgspec
from kafka.errors import MessageSizeTooLargeError

from onestop import dlq, events
from onestop.admission import AdmissionRules, admit
from onestop.catalogue import default_catalogue
from producers.dedup import RecentEvents, Seen

log = logging.getLogger(__name__)

# Gateway-specific per-event codes, next to events.CONTRACT_ERROR_CODES.
FORBIDDEN_COMMUNE = "forbidden_commune"
EVENT_ID_CONFLICT = "event_id_conflict"
EVENT_TOO_LARGE = "event_too_large"
EVENT_STATUS = {FORBIDDEN_COMMUNE: 403, EVENT_ID_CONFLICT: 409, EVENT_TOO_LARGE: 413}  # any other code: 422


class EventPublisher(Protocol):
    """The part of producers.publisher.Publisher the gateway uses."""

    def publish_raw(self, key: bytes | None, value: bytes) -> None: ...

    def dead_letter(self, record: dlq.DeadLetter) -> None: ...

    def flush(self, timeout: float | None = ..., *, durable_ok: bool = ...) -> None: ...


class PublishError(RuntimeError):
    """Neither Kafka nor the publisher's spool took the events in time: report nothing accepted."""


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    message: str
    field: str | None = None
    event_id: str | None = None

    @property
    def status(self) -> int:
        return EVENT_STATUS.get(self.code, 422)


@dataclass
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def source_of(commune_code: str) -> str:
    return f"gateway:{commune_code}"


class _Ids(msgspec.Struct):
    dossier_id: Any = None
    event_id: Any = None


_ids = msgspec.json.Decoder(_Ids)


def _ids_of(raw: bytes) -> tuple[str | None, str | None]:
    """Best-effort (dossier_id, event_id) of an event that failed validation, for the dead letter."""
    try:
        found = _ids.decode(raw)
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):  # any body at all may come here
        return None, None
    dossier_id, event_id = found.dossier_id, found.event_id
    return (dossier_id if isinstance(dossier_id, str) and dossier_id else None,
            event_id if isinstance(event_id, str) and event_id else None)


def _digest(event: events.DossierEvent) -> str:
    return hashlib.blake2b(events.encode(event), digest_size=16).hexdigest()


class Ingestor:
    """Validates, deduplicates and publishes the events of one commune's request."""

    def __init__(self, publisher: EventPublisher, recent: RecentEvents, *, timeout: float = 30.0,
                 rules: AdmissionRules | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.publisher = publisher
        self.recent = recent
        self.timeout = timeout
        self.rules = rules or AdmissionRules(default_catalogue())
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def ingest(self, raws: list[bytes], commune: str) -> Outcome:
        """Judge and publish every event; raise PublishError (and forget the new ids) if Kafka fails."""
        outcome, claimed = Outcome(), []
        try:
            for index, raw in enumerate(raws):
                self._one(index, raw, commune, outcome, claimed)
            self._flush()
        except Exception:
            self.recent.release(claimed)
            raise
        return outcome

    def reject_body(self, raw: bytes, commune: str, code: str, message: str) -> None:
        """Dead-letter a whole body that is not JSON at all (an authenticated sender's mistake)."""
        self._dead_letter(raw, commune, Rejection(0, code, message))
        self._flush()

    def _one(self, index: int, raw: bytes, commune: str, outcome: Outcome, claimed: list[str]) -> None:
        rejection, event, extras = self._judge(index, raw, commune)
        if event is not None:
            seen = self.recent.claim(event.event_id, _digest(event))
            if seen is Seen.DUPLICATE:
                outcome.duplicates += 1
                return
            if seen is Seen.CONFLICT:
                rejection = Rejection(index, EVENT_ID_CONFLICT, f"event_id {event.event_id!r} was already used "
                                      "for a different event", "event_id", event.event_id)
            else:
                claimed.append(event.event_id)  # released by ingest() if publishing fails
                rejection = self._publish(index, event, extras)
                if rejection is None:
                    outcome.accepted += 1
                    return
                self.recent.release([claimed.pop()])
        outcome.rejected.append(rejection)
        self._dead_letter(raw, commune, rejection)

    def _judge(self, index: int, raw: bytes, commune: str
               ) -> tuple[Rejection | None, events.DossierEvent | None, dict | None]:
        """(rejection, None, None) for a bad event, else (None, event stamped with our source, extras)."""
        try:
            decoded = events.decode_lenient(raw)
        except events.ContractError as exc:
            return Rejection(index, exc.code, exc.message, exc.field, _ids_of(raw)[1]), None, None
        except UnicodeDecodeError as exc:  # msgspec lets invalid UTF-8 inside a string escape as this
            return Rejection(index, "malformed_json", f"JSON text must be UTF-8: {exc}"), None, None
        event = decoded.event
        if event.commune_code != commune:
            message = f"this token may send events of commune {commune} only, not {event.commune_code}"
            return Rejection(index, FORBIDDEN_COMMUNE, message, "commune_code", event.event_id), None, None
        event = msgspec.structs.replace(event, source=source_of(commune))  # before admission: it picks the floor
        refusal = admit(event, self.rules, received_at=self.clock())
        if refusal is not None:
            return Rejection(index, refusal.code, refusal.message, refusal.field, event.event_id), None, None
        return None, event, decoded.extras

    def _publish(self, index: int, event: events.DossierEvent, extras: dict) -> Rejection | None:
        """Hand the event to the publisher; a record Kafka would refuse as too large is a rejection."""
        try:
            self.publisher.publish_raw(event.dossier_id.encode(), events.encode(event, extras=extras))
        except MessageSizeTooLargeError as exc:
            return Rejection(index, EVENT_TOO_LARGE, f"the event is too large for Kafka: {exc}", None, event.event_id)
        except Exception as exc:
            raise PublishError(f"cannot publish event {event.event_id}: {exc}") from exc
        return None

    def _dead_letter(self, raw: bytes, commune: str, rejection: Rejection) -> None:
        dossier_id, event_id = _ids_of(raw)
        record = dlq.dead_letter(raw, rejection.code, rejection.message, source_of(commune),
                                 dossier_id=dossier_id, event_id=rejection.event_id or event_id)
        try:
            self.publisher.dead_letter(record)
        except MessageSizeTooLargeError:  # base64 makes the original a third larger; the answer still says why
            log.warning("%s: rejected input #%d (%s, %d bytes) is too large for dossier.dlq; not dead-lettered",
                        source_of(commune), rejection.index, rejection.code, len(raw))
        except Exception as exc:
            raise PublishError(f"cannot dead-letter event #{rejection.index}: {exc}") from exc

    def _flush(self) -> None:
        try:
            self.publisher.flush(timeout=self.timeout, durable_ok=True)
        except Exception as exc:
            raise PublishError(f"events neither acknowledged by Kafka nor spooled within {self.timeout:g}s: "
                               f"{exc}") from exc
