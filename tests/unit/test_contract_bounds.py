"""The bounds of contract v1: what every store can hold, and what JSON from outside may look like."""

import json

import pytest

from onestop.events import ContractError, decode, decode_lenient, nesting_depth

EVENT = {"event_id": "e-1", "event_type": "submitted", "dossier_id": "H42.18073-261102-00001", "seq": 1,
         "occurred_at": "2026-11-02T09:00:00+07:00", "commune_code": "18073", "procedure_code": "2.000720",
         "channel": 2}


def raw(**changes) -> bytes:
    return json.dumps({**EVENT, **changes}).encode()


def refused(data: bytes, decoder=decode) -> ContractError:
    with pytest.raises(ContractError) as caught:
        decoder(data)
    return caught.value


@pytest.mark.parametrize(("field", "value"), [
    ("seq", 2**32 - 1), ("occurred_at", "1971-01-01T00:00:00Z"), ("occurred_at", "2148-12-31T23:59:59.999Z"),
    ("event_id", "x" * 128), ("dossier_id", "Hồ-sơ/42.01"), ("procedure_code", "LOCAL-CT-0001"),
    ("reason", "Thiếu giấy tờ.\nBổ sung bản sao\tcó chứng thực."), ("step", "Phòng Tư pháp " * 10),
    ("source", "importer:xuat khau 2026.csv:12"), ("procedure_version", "2025.07"),
])
def test_values_at_the_edges_of_the_bounds_are_accepted(field, value):
    assert getattr(decode(raw(**{field: value})), field) is not None


@pytest.mark.parametrize(("field", "value"), [
    ("seq", 2**32), ("seq", 10**30), ("occurred_at", "1970-12-31T23:59:59Z"),
    ("occurred_at", "1971-01-01T06:59:59+07:00"), ("occurred_at", "2149-01-01T00:00:00Z"),
    ("due_at", "9999-12-31T23:59:59Z"), ("event_id", "x" * 129), ("procedure_code", "1" * 65),
    ("dossier_id", "H42\u0000"), ("dossier_id", "H42 001"), ("dossier_id", "H42\n"), ("dossier_id", "H42\u202e"),
    ("event_id", "\u200b"), ("reason", "x" * 2001), ("reason", "bad\u0000text"), ("step", "\u001b[31m"),
    ("source", ""), ("calendar_version", "holidays 0.108"),
])
def test_values_beyond_the_bounds_are_refused_naming_the_field(field, value):
    error = refused(raw(**{field: value}))
    assert (error.code, error.field) == ("invalid_field", field)


def test_a_lone_surrogate_is_malformed_json():
    assert refused(raw().replace(b'"e-1"', b'"\\ud800"')).code == "malformed_json"


def test_nesting_beyond_the_decoders_reach_is_refused_not_raised():
    body = raw()[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert refused(body).code == "nesting_too_deep"
    assert refused(body, decode_lenient).code == "nesting_too_deep"


def test_json_from_outside_may_nest_a_little_and_no_more():
    ok = raw()[:-1] + b', "x": ' + b"[" * 30 + b"]" * 30 + b"}"
    assert decode_lenient(ok).extras["x"] is not None
    assert refused(raw()[:-1] + b', "x": ' + b"[" * 40 + b"]" * 40 + b"}", decode_lenient).code == "nesting_too_deep"
    assert decode(raw()[:-1] + b', "x": ' + b"[" * 40 + b"]" * 40 + b"}").seq == 1  # readers of Kafka do not care


def test_nesting_depth_ignores_brackets_inside_strings():
    assert nesting_depth(json.dumps({"a": "[[[[{{{{" * 20, "b": [[1]]}).encode()) == 3
    assert nesting_depth(json.dumps({"a": '\\"[[[' * 20}).encode()) == 1


def test_a_repeated_key_is_refused_by_the_decoder_for_outside_json():
    error = refused(raw()[:-1] + b', "seq": 2}', decode_lenient)
    assert (error.code, error.field) == ("duplicate_key", "seq")
    assert decode(raw()[:-1] + b', "seq": 2}').seq == 2  # the fast decoder (Kafka readers) takes the last


def test_an_extra_number_no_reader_can_hold_is_refused():
    for number in (b"1e999999", b"9" * 5000, b"-" + b"9" * 4400):
        error = refused(raw()[:-1] + b', "x": ' + number + b"}", decode_lenient)
        assert (error.code, error.field) == ("invalid_field", "x")
