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

from onestop import jsontext
from onestop.jsontext import nesting_depth  # noqa: F401  (part of the contract's API)
from msgspec import UNSET, UnsetType

SCHEMA_VERSION = 1  # the major version on the wire: a 1.x event carries 1
CONTRACT_VERSION = "1.1"  # minor versions only add optional fields and event types
COMMUNE_CODE = r"^\d{5}$"

# Accepted means storable: every bound below fits every place an event goes (the worker's msgpack
# state, the ClickHouse columns in sinks/schema.py, a Kafka record). tests/unit/test_storable.py
# checks the promise for any event the decoder accepts.
SEQ_MAX = 2**32 - 1  # dossier_events.seq is UInt32
# Instants fit ClickHouse Date (1970-01-01..2149-06-06) and DateTime64(3) (1900..2299), with a year of
# room for what the worker derives from them (day, week and month starts, deadlines, age buckets).
EARLIEST = datetime(1971, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2148, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)
_SAFE_YEARS = (EARLIEST.year, LATEST.year)
ID_MAX, CODE_MAX, TEXT_MAX, SOURCE_MAX = 128, 64, 2000, 256
MAX_NESTING = 32  # of a JSON event from outside (extras may nest); the contract's own fields are flat
# Identifiers: no whitespace, no control or invisible format characters, no lone surrogates.
_NOT_IN_ID = r"\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ud800-\udfff"
# Names and free text: spaces, tabs and line breaks are fine, other control characters are not.
_NOT_IN_TEXT = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff"
_ID_CHARS, _TEXT_CHARS = f"^[^{_NOT_IN_ID}]+$", f"^[^{_NOT_IN_TEXT}]*$"
# The patterns go into the JSON Schema; __post_init__ checks the characters (one regex search over all
# fields of a kind is cheaper than msgspec matching a pattern per field, and ``$`` would let a trailing
# newline through).
_bad_id, _bad_text = re.compile(f"[{_NOT_IN_ID}]").search, re.compile(f"[{_NOT_IN_TEXT}]").search
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX, extra_json_schema={"pattern": _ID_CHARS})]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=CODE_MAX, extra_json_schema={"pattern": _ID_CHARS})]
Text = Annotated[str, msgspec.Meta(max_length=TEXT_MAX, extra_json_schema={"pattern": _TEXT_CHARS})]
Source = Annotated[str, msgspec.Meta(min_length=1, max_length=SOURCE_MAX, extra_json_schema={"pattern": _TEXT_CHARS})]
Seq = Annotated[int, msgspec.Meta(ge=1, le=SEQ_MAX)]


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


def _check_instant(field: str, value: datetime) -> None:
    if value.tzinfo is None:
        raise _invalid(field, "must carry a timezone offset")
    # The year alone settles it almost always; comparing instants across time zones costs microseconds.
    if not _SAFE_YEARS[0] < value.year < _SAFE_YEARS[1] and not EARLIEST <= value <= LATEST:
        raise _invalid(field, f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC), got {value.isoformat()}")


_IDS = (("event_id", ID_MAX), ("dossier_id", ID_MAX), ("procedure_code", CODE_MAX),
        ("procedure_version", CODE_MAX), ("calendar_version", CODE_MAX))
_TEXTS = (("step", TEXT_MAX), ("reason", TEXT_MAX), ("source", SOURCE_MAX))


def _check_strings(event: "DossierEvent") -> None:
    # Fast path first (this runs for every event): one search over the identifiers, one over the texts.
    version = (event.procedure_version or "") + (event.calendar_version or "")
    ids = event.event_id + event.dossier_id + event.procedure_code + version
    texts = (event.step or "") + (event.reason or "") + event.source
    lengths_ok = (0 < len(event.event_id) <= ID_MAX and 0 < len(event.dossier_id) <= ID_MAX
                  and 0 < len(event.procedure_code) <= CODE_MAX and len(version) <= 2 * CODE_MAX
                  and len(texts) <= 2 * TEXT_MAX + SOURCE_MAX)
    if lengths_ok and not _bad_id(ids) and not _bad_text(texts) and event.source:
        if len(texts) <= SOURCE_MAX or all(len(getattr(event, n) or "") <= limit for n, limit in _TEXTS):
            return
    _name_the_bad_string(event)


def _name_the_bad_string(event: "DossierEvent") -> None:
    for name, limit in _IDS:
        value = getattr(event, name)
        if value is None and name in ("procedure_version", "calendar_version"):
            continue
        if not value:
            raise _invalid(name, "must not be empty")
        if len(value) > limit or _bad_id(value):
            raise _invalid(name, f"must be 1 to {limit} characters without spaces or control characters, "
                           f"got {value[:40]!r}")
    for name, limit in _TEXTS:
        value = getattr(event, name)
        if value is not None and (len(value) > limit or _bad_text(value) or (name == "source" and not value)):
            raise _invalid(name, f"must be 1 to {limit} characters without control characters")


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

    event_id: Identifier  # unique per event; a UUID is recommended
    event_type: EventType
    dossier_id: Identifier
    seq: Seq  # per-dossier sequence number, from 1, assigned by the source system
    occurred_at: datetime  # timezone-aware, stored and sent as UTC; between EARLIEST and LATEST
    commune_code: str
    procedure_code: Code
    channel: Channel
    due_at: datetime | None = None  # receipt's NgayHenTra on accepted; the new date on extended/corrected
    handling_commune_code: str | None = None
    step: Text | None = None  # step or agency name for step events (inter-agency hops)
    reason: Text | None = None  # free text: refusal, stop, extension or correction reason
    source: Source = "unknown"  # which producer emitted it: simulator, gateway, importer:<file>, ...
    schema_version: int = SCHEMA_VERSION
    # Optional since v1.1 (absent = unknown). A dossier is judged by the procedure rule and the
    # calendar in force when it was accepted, so the source may stamp them on the accepted event.
    procedure_version: Code | None = None
    calendar_version: Code | None = None
    # Since 1.1, absent (UNSET) unless given; a v1 event encodes without them.
    reception_point: ReceptionPoint | None | UnsetType = UNSET  # on the first event or the receipt
    beneficiary_group: BeneficiaryGroup | None | UnsetType = UNSET  # e.g. người có công, where the source says
    rating: Rating | UnsetType = UNSET  # required on rated events, refused on others

    def __post_init__(self) -> None:
        # msgspec turns these ValueErrors into ValidationErrors. They use msgspec's own
        # "- at `$.field`" suffix so that ContractError can name the field for both kinds.
        # Messages are built only on failure: this runs for every decoded event. The decoder has
        # already checked the annotated bounds; they are checked again here for events built in code
        # (the importer, the simulator), which msgspec does not validate.
        if not _is_commune_code(self.commune_code):
            raise _invalid("commune_code", f"must be a 5-digit string, got {self.commune_code!r}")
        if self.handling_commune_code is not None and not _is_commune_code(self.handling_commune_code):
            raise _invalid("handling_commune_code", f"must be a 5-digit string, got {self.handling_commune_code!r}")
        if not 1 <= self.seq <= SEQ_MAX:
            raise _invalid("seq", f"must be between 1 and {SEQ_MAX}, got {self.seq}")
        _check_instant("occurred_at", self.occurred_at)
        if self.due_at is None and self.event_type in NEEDS_DUE_AT:
            raise _invalid("due_at", f"is required on {self.event_type.value} events")
        if self.due_at is not None:
            _check_instant("due_at", self.due_at)
        if self.rating is not UNSET or self.event_type is EventType.RATED:
            _check_rating(self.event_type, self.rating)
        if self.beneficiary_group is not UNSET and self.beneficiary_group is not None \
                and not 0 < len(self.beneficiary_group) <= BENEFICIARY_GROUP_MAX:
            raise _invalid("beneficiary_group", f"must be 1 to {BENEFICIARY_GROUP_MAX} characters")
        if self.schema_version != SCHEMA_VERSION:
            raise _invalid("schema_version",
                           f"unsupported schema_version {self.schema_version}; this build reads {SCHEMA_VERSION}")
        _check_strings(self)

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
    "unsupported_schema_version", "invalid_field", "nesting_too_deep", "duplicate_key",
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
    except RecursionError:  # msgspec recurses into nested values, even unknown ones it skips
        raise ContractError("nesting_too_deep", "JSON nested deeper than the decoder can follow") from None


def decode_lenient(raw: bytes) -> DecodedEvent:
    """Like ``decode``, but also return the unknown top-level keys in ``extras``.

    This is the decoder for JSON text from outside (the gateway): it also refuses text nested deeper
    than ``MAX_NESTING`` and objects that repeat a key (readers disagree on which copy counts).
    """
    if nesting_depth(raw) > MAX_NESTING:
        raise ContractError("nesting_too_deep", f"JSON nested deeper than {MAX_NESTING} levels")
    event = decode(raw)
    _refuse_duplicate_keys(raw)
    envelope = _envelope_decoder.decode(raw)  # cannot fail: decode() accepted the same bytes
    extras = {}
    for key, value in envelope.items():
        if key not in KNOWN_FIELDS:
            try:
                extras[key] = msgspec.json.decode(value)
            except msgspec.DecodeError as exc:  # e.g. a number beyond 64 bits or a float beyond double
                raise ContractError("invalid_field", f"extra field `{key}`: {exc}", key) from None
    return DecodedEvent(event, extras)


def _refuse_duplicate_keys(raw: bytes) -> None:
    repeated = jsontext.repeated_key(raw)
    if repeated is not None:
        raise ContractError("duplicate_key", f"key `{repeated}` appears more than once in one object",
                            repeated if repeated in KNOWN_FIELDS else None)


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
