"""Dead-letter records: rejected input, kept whole, with the reason it was rejected.

Bad input never stops the pipeline. Whatever cannot be accepted (malformed
JSON, a contract violation, an illegal lifecycle transition) is wrapped in a
``DeadLetter`` and sent to ``dossier.dlq``. The original bytes are kept
base64-encoded so nothing is lost, even when they are not valid UTF-8.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import msgspec


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    original_b64: str  # the rejected bytes, exactly as received
    reason_code: str  # machine-readable: malformed_json, missing_field, illegal_transition, ... (docs/dlq.md)
    message: str  # for people: what is wrong, naming the field or the transition
    source: str  # who sent it: gateway:<commune>, importer:<file>:<row>, worker:… or sink:<topic>:<partition>@<offset>
    rejected_at: datetime
    dossier_id: str | None = None
    event_id: str | None = None
    # Where the rejected record lies in Kafka, when it was read from Kafka (the sinks set them).
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)


def dead_letter(
    original: bytes,
    reason_code: str,
    message: str,
    source: str,
    *,
    rejected_at: datetime | None = None,
    dossier_id: str | None = None,
    event_id: str | None = None,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    return DeadLetter(
        original_b64=base64.b64encode(original).decode("ascii"),
        reason_code=reason_code,
        message=message,
        source=source,
        rejected_at=rejected_at or datetime.now(timezone.utc),
        dossier_id=dossier_id,
        event_id=event_id,
        topic=topic,
        partition=partition,
        offset=offset,
    )


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DeadLetter)


def encode(record: DeadLetter) -> bytes:
    return _encoder.encode(record)


def decode(raw: bytes) -> DeadLetter:
    return _decoder.decode(raw)
