"""Event contract v1: round trips, forward-compatible extras, and precise rejections."""

import json

import pytest

from onestop.events import (CONTRACT_ERROR_CODES, KNOWN_FIELDS, ContractError, EventType, decode, decode_lenient,
                            encode)

ACCEPTED = {
    "event_id": "e-1", "event_type": "accepted", "dossier_id": "000.00.42.H12-250505-0001", "seq": 2,
    "occurred_at": "2025-05-05T09:00:00+07:00", "commune_code": "18754", "procedure_code": "2.000720",
    "channel": 2, "due_at": "2025-05-08T17:00:00+07:00",
}
REQUIRED = ("event_id", "event_type", "dossier_id", "seq", "occurred_at", "commune_code", "procedure_code", "channel")


def raw(**changes) -> bytes:
    body = {**ACCEPTED, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def rejection(data: bytes) -> ContractError:
    with pytest.raises(ContractError) as caught:
        decode(data)
    assert caught.value.code in CONTRACT_ERROR_CODES
    return caught.value


def test_encode_then_decode_gives_the_same_event():
    event = decode(raw())
    assert decode(encode(event)) == event
    assert event.event_type is EventType.ACCEPTED and event.schema_version == 1


def test_an_event_without_the_new_optional_fields_still_decodes():
    event = decode(raw())
    assert event.procedure_version is None and event.calendar_version is None


def test_unknown_extra_fields_are_ignored_by_decode():
    assert decode(raw(priority="high", nested={"a": [1, 2]})) == decode(raw())


def test_unknown_extra_fields_are_kept_by_decode_lenient_and_passed_on_by_encode():
    decoded = decode_lenient(raw(priority="high", nested={"a": [1, 2]}))
    assert decoded.event == decode(raw())
    assert decoded.extras == {"priority": "high", "nested": {"a": [1, 2]}}
    relayed = json.loads(encode(decoded.event, extras=decoded.extras))
    assert relayed["priority"] == "high" and relayed["nested"] == {"a": [1, 2]}
    assert decode_lenient(encode(decoded.event, extras=decoded.extras)) == decoded


def test_an_extra_cannot_overwrite_a_contract_field():
    event = decode(raw())
    assert json.loads(encode(event, extras={"seq": 99, "x": 1}))["seq"] == 2
    assert set(KNOWN_FIELDS) >= set(json.loads(encode(event)))


def test_an_unknown_event_type_is_rejected_naming_the_field():
    error = rejection(raw(event_type="teleported"))
    assert error.code == "unknown_event_type" and error.field == "event_type"
    assert "teleported" in error.message and "result_ready" in error.message


@pytest.mark.parametrize("field", REQUIRED)
def test_a_missing_required_field_is_rejected_naming_it(field):
    error = rejection(raw(**{field: ...}))
    assert (error.code, error.field) == ("missing_field", field)
    assert f"`{field}`" in error.message


@pytest.mark.parametrize("kind", ["accepted", "extended", "due_date_corrected"])
def test_events_that_set_a_due_date_must_carry_it(kind):
    error = rejection(raw(event_type=kind, due_at=...))
    assert (error.code, error.field) == ("missing_field", "due_at")


@pytest.mark.parametrize(("field", "value"), [
    ("commune_code", "1875"), ("commune_code", 18754), ("commune_code", "1875٤"), ("commune_code", "18754\n"),
    ("handling_commune_code", "abcde"), ("seq", 0), ("seq", "2"), ("channel", 9),
    ("occurred_at", "2025-05-05T09:00:00"), ("due_at", "2025-05-08T17:00:00"), ("event_id", ""),
])
def test_an_invalid_field_is_rejected_naming_it(field, value):
    error = rejection(raw(**{field: value}))
    assert (error.code, error.field) == ("invalid_field", field)
    assert field in error.message


def test_a_newer_schema_version_is_refused():
    error = rejection(raw(schema_version=2))
    assert (error.code, error.field) == ("unsupported_schema_version", "schema_version")


@pytest.mark.parametrize(("data", "code"), [(b"{not json", "malformed_json"), (b"", "malformed_json"),
                                            (b"[1, 2]", "not_an_object")])
def test_bytes_that_are_not_an_event_object_are_rejected(data, code):
    assert rejection(data).code == code


def test_decode_lenient_rejects_like_decode():
    with pytest.raises(ContractError) as caught:
        decode_lenient(raw(seq=...))
    assert caught.value.field == "seq"
