"""Event contract v1 (minor version 1.1): the one wire format of ``dossier.events``.

Every commune one-stop system, the importer, the gateway and the simulator emit
these events. They are frozen msgspec Structs: typed decode on the hot path,
JSON on the wire, keyed by ``dossier_id`` on Kafka so that one dossier's events
stay in order on one partition.

Status codes follow the national portal (TrangThaiHoSo 1..10); see
``STATUS_OF`` for which event type moves a dossier to which status.

Version 1.1 adds, without changing anything a v1 event says: where the dossier
was received (``reception_point``), the beneficiary group where the source
gives one, and the ``rated`` event (a citizen's rating, with its ``rating``).
The new fields are absent when not given (``msgspec.UNSET``), so a v1 event
decodes, folds and re-encodes exactly as before.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Mapping

import msgspec
from msgspec import UNSET, UnsetType

SCHEMA_VERSION = 1  # the major version on the wire: a 1.x event carries 1
CONTRACT_VERSION = "1.1"  # minor versions only add optional fields and event types
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
    RATED = "rated"  # since 1.1: the citizen's rating (at hand-back or online); not a lifecycle step


class ReceptionPoint(str, enum.Enum):
    """Since 1.1: where the dossier was received. Absent on v1 events: derive it from the channel."""

    COUNTER = "counter"  # the centre's counter (Trung tâm Phục vụ hành chính công)
    OUTREACH = "outreach"  # a village outreach session (officers serving in the villages)
    ONLINE = "online"  # the public service portal
    POSTAL = "postal"  # public postal service


RATING_SCORES = (1, 5)  # a score from 1 (very dissatisfied) to 5 (very satisfied)
BENEFICIARY_GROUP_MAX = 64
BeneficiaryGroup = Annotated[str, msgspec.Meta(min_length=1, max_length=BENEFICIARY_GROUP_MAX)]


class Rating(msgspec.Struct, frozen=True, kw_only=True):
    """Since 1.1: what a citizen said about a dossier, on a ``rated`` event."""

    score: Annotated[int, msgspec.Meta(ge=RATING_SCORES[0], le=RATING_SCORES[1])]
    complaint: bool = False  # the citizen filed a complaint (phản ánh, kiến nghị) about this dossier
    via: Literal["hand_back", "online"] = "hand_back"  # at the counter when collecting, or on the portal


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
    EventType.RATED: None,  # feedback keeps the current status
}

# Event types that must carry a due date, and why.
NEEDS_DUE_AT = {EventType.ACCEPTED, EventType.EXTENDED, EventType.DUE_DATE_CORRECTED}

# fullmatch + ASCII: "$" would accept a trailing newline, and str.isdigit() accepts "²" or "٤".
_is_commune_code = re.compile(r"[0-9]{5}", re.ASCII).fullmatch


def _invalid(field: str, problem: str) -> ValueError:
    return ValueError(f"{problem} - at `$.{field}`")


def _check_rating(event_type: EventType, rating: Rating | UnsetType) -> None:
    if event_type is not EventType.RATED:
        raise _invalid("rating", f"belongs on rated events, not on {event_type.value}")
    if rating is UNSET:
        raise _invalid("rating", "is required on rated events")
    low, high = RATING_SCORES
    if isinstance(rating.score, bool) or not low <= rating.score <= high:
        raise _invalid("rating", f"score must be {low} to {high}, got {rating.score!r}")


class DossierEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One lifecycle event of one dossier (contract v1.1).

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
    # Optional since v1.1 (absent = unknown). A dossier is judged by the procedure rule and the
    # calendar in force when it was accepted, so the source may stamp them on the accepted event.
    procedure_version: str | None = None
    calendar_version: str | None = None
    # Since 1.1, absent (UNSET) unless given; a v1 event encodes without them.
    reception_point: ReceptionPoint | None | UnsetType = UNSET  # on the first event or the receipt
    beneficiary_group: BeneficiaryGroup | None | UnsetType = UNSET  # e.g. người có công, where the source says
    rating: Rating | UnsetType = UNSET  # required on rated events, refused on others

    def __post_init__(self) -> None:
        # msgspec turns these ValueErrors into ValidationErrors. They use msgspec's own
        # "- at `$.field`" suffix so that ContractError can name the field for both kinds.
        # Messages are built only on failure: this runs for every decoded event.
        if not self.event_id:
            raise _invalid("event_id", "must not be empty")
        if not self.dossier_id:
            raise _invalid("dossier_id", "must not be empty")
        if self.seq < 1:
            raise _invalid("seq", f"must be >= 1, got {self.seq}")
        if not _is_commune_code(self.commune_code):
            raise _invalid("commune_code", f"must be a 5-digit string, got {self.commune_code!r}")
        if self.handling_commune_code is not None and not _is_commune_code(self.handling_commune_code):
            raise _invalid("handling_commune_code", f"must be a 5-digit string, got {self.handling_commune_code!r}")
        if self.occurred_at.tzinfo is None:
            raise _invalid("occurred_at", "must carry a timezone offset")
        if self.due_at is None and self.event_type in NEEDS_DUE_AT:
            raise _invalid("due_at", f"is required on {self.event_type.value} events")
        if self.due_at is not None and self.due_at.tzinfo is None:
            raise _invalid("due_at", "must carry a timezone offset")
        if self.rating is not UNSET or self.event_type is EventType.RATED:
            _check_rating(self.event_type, self.rating)
        if self.beneficiary_group is not UNSET and self.beneficiary_group is not None \
                and not 0 < len(self.beneficiary_group) <= BENEFICIARY_GROUP_MAX:
            raise _invalid("beneficiary_group", f"must be 1 to {BENEFICIARY_GROUP_MAX} characters")
        if self.schema_version != SCHEMA_VERSION:
            raise _invalid("schema_version",
                           f"unsupported schema_version {self.schema_version}; this build reads {SCHEMA_VERSION}")

    @property
    def handling_unit(self) -> str:
        return self.handling_commune_code or self.commune_code

    @property
    def status(self) -> int | None:
        return STATUS_OF[self.event_type]




class DecodedEvent(msgspec.Struct, frozen=True):
    """A typed event plus the unknown top-level keys it arrived with.

    Producers newer than this build may add fields. The typed event ignores
    them; ``extras`` keeps them so a relay can pass them on unchanged
    (``encode(decoded.event, extras=decoded.extras)``).
    """

    event: DossierEvent
    extras: dict[str, Any] = {}


class ContractError(ValueError):
    """Raw bytes that are not a valid v1 event.

    ``code`` is machine-readable (one of ``CONTRACT_ERROR_CODES``), ``message``
    is for people, and ``field`` names the offending field when there is one.
    """

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field


CONTRACT_ERROR_CODES = (
    "malformed_json", "not_an_object", "missing_field", "unknown_event_type",
    "unsupported_schema_version", "invalid_field",
)
KNOWN_FIELDS = frozenset(DossierEvent.__struct_fields__)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DossierEvent)
_envelope_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_MISSING = re.compile(r"missing required field `(\w+)`")
_AT_FIELD = re.compile(r"^(?P<problem>.*?)(?: - at `\$\.(?P<field>\w+)[^`]*`)?$", re.DOTALL)


def encode(event: DossierEvent, *, extras: Mapping[str, Any] | None = None) -> bytes:
    """JSON bytes of one event; ``extras`` (unknown keys kept by ``decode_lenient``) are appended.

    Known fields always win over an extra of the same name.
    """
    body = _encoder.encode(event)
    kept = {k: v for k, v in (extras or {}).items() if k not in KNOWN_FIELDS}
    if not kept:
        return body
    # Splice two JSON objects instead of re-encoding the event through a dict: cheaper on the hot path.
    return body[:-1] + b"," + _encoder.encode(kept)[1:]


def decode(raw: bytes) -> DossierEvent:
    """Decode and validate one event; raise ContractError with a precise reason.

    Unknown extra keys are ignored (forward compatibility); use ``decode_lenient``
    to keep them.
    """
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _contract_error(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ContractError("malformed_json", str(exc)) from exc
    except UnicodeDecodeError as exc:  # invalid UTF-8 inside a JSON string
        raise ContractError("malformed_json", f"invalid UTF-8: {exc}") from exc


def decode_lenient(raw: bytes) -> DecodedEvent:
    """Like ``decode``, but also return the unknown top-level keys in ``extras``."""
    event = decode(raw)
    envelope = _envelope_decoder.decode(raw)  # cannot fail: decode() accepted the same bytes
    extras = {k: msgspec.json.decode(v) for k, v in envelope.items() if k not in KNOWN_FIELDS}
    return DecodedEvent(event, extras)


def _contract_error(text: str) -> ContractError:
    missing = _MISSING.search(text)
    if missing:
        field = missing.group(1)
        return ContractError("missing_field", f"missing required field `{field}`", field)
    match = _AT_FIELD.match(text)
    problem, field = match.group("problem"), match.group("field")
    if field is None:
        return ContractError("not_an_object" if "Expected `object`" in problem else "invalid_field", problem)
    if field == "event_type" and problem.startswith("Invalid enum value"):
        known = ", ".join(t.value for t in EventType)
        return ContractError("unknown_event_type", f"`event_type`: {problem}; known types: {known}", field)
    if problem.startswith("is required"):  # due_at on accepted/extended/corrected
        return ContractError("missing_field", f"`{field}` {problem}", field)
    code = "unsupported_schema_version" if field == "schema_version" else "invalid_field"
    return ContractError(code, f"`{field}`: {problem}", field)


def utc(dt: datetime) -> datetime:
    """Normalise an aware datetime to UTC."""
    return dt.astimezone(timezone.utc)


def json_schema() -> dict:
    """The JSON Schema of the contract (checked in as onestop/schema/dossier-event.v1.1.json).

    ``onestop/schema/dossier-event.v1.json`` keeps the published v1 schema; every event valid
    under it is valid under this one (tests/unit/test_contract_v11.py).
    """
    return msgspec.json.schema(DossierEvent)
