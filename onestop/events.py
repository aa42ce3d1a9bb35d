"""Event contract v1: the one wire format of ``dossier.events``.

Every commune one-stop system, the importer, the gateway and the simulator emit
these events. They are frozen msgspec Structs: typed decode on the hot path,
JSON on the wire, keyed by ``dossier_id`` on Kafka so that one dossier's events
stay in order on one partition.

Status codes follow the national portal (TrangThaiHoSo 1..10); see
``STATUS_OF`` for which event type moves a dossier to which status.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

import msgspec

SCHEMA_VERSION = 1
COMMUNE_CODE = r"^\d{5}$"


class EventType(str, enum.Enum):
    """Lifecycle events of a dossier, in the order a normal dossier meets them."""

    SUBMITTED = "submitted"  # 1 Mới đăng ký: filed online or by post, not yet accepted
    RECEPTION_SUPPLEMENT_REQUESTED = "reception_supplement_requested"  # form 02 at reception: no clock yet
    ACCEPTED = "accepted"  # 2 Được tiếp nhận: receipt with appointment date (form 01); the clock starts
    REFUSED_AT_RECEPTION = "refused_at_reception"  # 3 Không được tiếp nhận (form 03)
    STEP_ASSIGNED = "step_assigned"  # 4 Đang xử lý: a specialist or another agency takes a step
    STEP_COMPLETED = "step_completed"  # 4 Đang xử lý
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 5 Yêu cầu bổ sung: pauses the clock
    SUPPLEMENT_RECEIVED = "supplement_received"  # back to 4; the clock resumes
    FINANCIAL_OBLIGATION_REQUESTED = "financial_obligation_requested"  # 6 Yêu cầu nghĩa vụ tài chính
    FINANCIAL_OBLIGATION_FULFILLED = "financial_obligation_fulfilled"  # back to 4
    EXTENDED = "extended"  # form 04 apology letter with a new due date
    DUE_DATE_CORRECTED = "due_date_corrected"  # an audited fix of the receipt's due date
    WITHDRAWAL_REQUESTED = "withdrawal_requested"  # 7 Công dân rút hồ sơ (terminal)
    PROCESSING_STOPPED = "processing_stopped"  # 8 Dừng xử lý (terminal, form 05)
    REFUSED = "refused"  # refused after acceptance (terminal)
    RESULT_READY = "result_ready"  # 9 Đã xử lý xong: the on-time reference moment
    RESULT_RETURNED = "result_returned"  # 10 Đã trả kết quả


class Channel(enum.IntEnum):
    """KenhThucHien: how the citizen filed the dossier."""

    IN_PERSON = 1  # trực tiếp
    ONLINE = 2  # trực tuyến
    POSTAL = 3  # bưu chính công ích


STATUS_OF: dict[EventType, int | None] = {
    EventType.SUBMITTED: 1,
    EventType.RECEPTION_SUPPLEMENT_REQUESTED: 1,
    EventType.ACCEPTED: 2,
    EventType.REFUSED_AT_RECEPTION: 3,
    EventType.STEP_ASSIGNED: 4,
    EventType.STEP_COMPLETED: 4,
    EventType.SUPPLEMENT_REQUESTED: 5,
    EventType.SUPPLEMENT_RECEIVED: 4,
    EventType.FINANCIAL_OBLIGATION_REQUESTED: 6,
    EventType.FINANCIAL_OBLIGATION_FULFILLED: 4,
    EventType.EXTENDED: None,  # keeps the current status
    EventType.DUE_DATE_CORRECTED: None,
    EventType.WITHDRAWAL_REQUESTED: 7,
    EventType.PROCESSING_STOPPED: 8,
    EventType.REFUSED: 8,
    EventType.RESULT_READY: 9,
    EventType.RESULT_RETURNED: 10,
}

# Event types that must carry a due date, and why.
NEEDS_DUE_AT = {EventType.ACCEPTED, EventType.EXTENDED, EventType.DUE_DATE_CORRECTED}


class DossierEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One lifecycle event of one dossier (contract v1).

    ``commune_code`` is the receiving unit (reception metrics);
    ``handling_commune_code`` is the unit that resolves it (timeliness
    metrics) and defaults to the receiving unit.
    """

    event_id: str
    event_type: EventType
    dossier_id: str
    seq: int  # per-dossier sequence number, from 1, assigned by the source system
    occurred_at: datetime  # timezone-aware, stored and sent as UTC
    commune_code: str
    procedure_code: str
    channel: Channel
    due_at: datetime | None = None  # receipt's NgayHenTra on accepted; the new date on extended/corrected
    handling_commune_code: str | None = None
    step: str | None = None  # step or agency name for step events (inter-agency hops)
    reason: str | None = None  # free text: refusal, stop, extension or correction reason
    source: str = "unknown"  # which producer emitted it: simulator, gateway, importer:<file>, ...
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # msgspec turns these ValueErrors into ValidationErrors naming the problem.
        if not self.event_id:
            raise ValueError("event_id must not be empty")
        if not self.dossier_id:
            raise ValueError("dossier_id must not be empty")
        if self.seq < 1:
            raise ValueError(f"seq must be >= 1, got {self.seq}")
        if len(self.commune_code) != 5 or not self.commune_code.isdigit():
            raise ValueError(f"commune_code must be a 5-digit string, got {self.commune_code!r}")
        if self.handling_commune_code is not None and (
            len(self.handling_commune_code) != 5 or not self.handling_commune_code.isdigit()
        ):
            raise ValueError(f"handling_commune_code must be a 5-digit string, got {self.handling_commune_code!r}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a timezone offset")
        if self.event_type in NEEDS_DUE_AT and self.due_at is None:
            raise ValueError(f"{self.event_type.value} events must carry due_at")
        if self.due_at is not None and self.due_at.tzinfo is None:
            raise ValueError("due_at must carry a timezone offset")
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {self.schema_version}; this build reads {SCHEMA_VERSION}")

    @property
    def handling_unit(self) -> str:
        return self.handling_commune_code or self.commune_code

    @property
    def status(self) -> int | None:
        return STATUS_OF[self.event_type]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DossierEvent)


class ContractError(ValueError):
    """Raw bytes that are not a valid v1 event. ``code`` is machine-readable, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def encode(event: DossierEvent) -> bytes:
    return _encoder.encode(event)


def decode(raw: bytes) -> DossierEvent:
    """Decode and validate one event; raise ContractError with a precise reason."""
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ContractError("invalid_event", str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ContractError("malformed_json", str(exc)) from exc


def utc(dt: datetime) -> datetime:
    """Normalise an aware datetime to UTC."""
    return dt.astimezone(timezone.utc)


def json_schema() -> dict:
    """The JSON Schema of contract v1 (checked in as onestop/schema/dossier-event.v1.json)."""
    return msgspec.json.schema(DossierEvent)
