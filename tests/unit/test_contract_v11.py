"""Contract 1.1: reception point, beneficiary group and the rating event, added without touching v1.

``tests/data/contract-v1-events.jsonl`` was written by the v1 code (every v1 event type on every
channel, with and without each optional field, in two time zones). A v1 event must still decode,
and re-encode to exactly the bytes v1 wrote.
"""

from datetime import datetime, timedelta, timezone
from pathlib import Path
import json

import msgspec
import pytest

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.events import UNSET, DossierEvent, EventType, Rating, ReceptionPoint
from onestop.fold import DossierState, apply, fold
from onestop.sla import classify
from onestop.workcal import WorkCalendar

ROOT = Path(__file__).resolve().parents[2]
V1_LINES = (ROOT / "tests/data/contract-v1-events.jsonl").read_bytes().splitlines()
V1_SCHEMA = json.loads((ROOT / "onestop/schema/dossier-event.v1.json").read_text(encoding="utf-8"))
V11_SCHEMA = json.loads((ROOT / "onestop/schema/dossier-event.v1.1.json").read_text(encoding="utf-8"))
E = EventType
T0 = datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)  # 08:00 in Hà Tĩnh, a Tuesday


def test_the_corpus_covers_every_v1_event_type_and_channel():
    seen = {(json.loads(line)["event_type"], json.loads(line)["channel"]) for line in V1_LINES}
    v1_types = V1_SCHEMA["$defs"]["EventType"]["enum"]
    assert seen == {(t, c) for t in v1_types for c in (1, 2, 3)}


@pytest.mark.parametrize("line", V1_LINES, ids=lambda raw: json.loads(raw)["event_id"])
def test_every_v1_event_still_decodes_and_encodes_to_the_same_bytes(line):
    event = events.decode(line)
    assert events.encode(event) == line
    assert event.reception_point is UNSET and event.beneficiary_group is UNSET and event.rating is UNSET
    assert events.decode_lenient(line).extras == {}


def test_the_v11_schema_only_adds_optional_properties_to_v1():
    old, new = V1_SCHEMA["$defs"], V11_SCHEMA["$defs"]
    before, after = old["DossierEvent"], new["DossierEvent"]
    for name, spec in before["properties"].items():
        assert after["properties"][name] == spec, name
    assert set(after["required"]) <= set(before["required"])
    added = set(after["properties"]) - set(before["properties"])
    assert added == {"reception_point", "beneficiary_group", "rating"}
    assert not added & set(after["required"])
    assert set(old["EventType"]["enum"]) < set(new["EventType"]["enum"])
    assert set(new["EventType"]["enum"]) - set(old["EventType"]["enum"]) == {"rated"}
    assert old["Channel"] == new["Channel"]


def ev(seq: int, kind: EventType, at: datetime, **kw) -> DossierEvent:
    base = dict(event_id=f"e{seq}", event_type=kind, dossier_id="D1", seq=seq, occurred_at=at,
                commune_code="18484", procedure_code="2.000815", channel=events.Channel.IN_PERSON)
    return DossierEvent(**{**base, **kw})


def rated(seq: int, at: datetime, score: int, complaint: bool = False, via: str = "hand_back") -> DossierEvent:
    return ev(seq, E.RATED, at, rating=Rating(score=score, complaint=complaint, via=via))


def test_v11_fields_round_trip():
    e = ev(1, E.ACCEPTED, T0, due_at=T0 + timedelta(hours=8), reception_point=ReceptionPoint.OUTREACH,
           beneficiary_group="người có công")
    back = events.decode(events.encode(e))
    assert back == e and back.reception_point is ReceptionPoint.OUTREACH
    r = rated(2, T0, 2, complaint=True, via="online")
    assert events.decode(events.encode(r)).rating == Rating(score=2, complaint=True, via="online")


@pytest.mark.parametrize(("patch", "code", "field"), [
    ({"event_type": "rated"}, "missing_field", "rating"),
    ({"event_type": "rated", "rating": {"score": 0}}, "invalid_field", "rating"),
    ({"event_type": "rated", "rating": {"score": 6}}, "invalid_field", "rating"),
    ({"event_type": "rated", "rating": {"score": 3, "via": "phone"}}, "invalid_field", "rating"),
    ({"event_type": "step_assigned", "rating": {"score": 3}}, "invalid_field", "rating"),
    ({"reception_point": "village"}, "invalid_field", "reception_point"),
    ({"beneficiary_group": ""}, "invalid_field", "beneficiary_group"),
    ({"beneficiary_group": "x" * 65}, "invalid_field", "beneficiary_group"),
])
def test_bad_v11_fields_are_refused_with_the_field_named(patch, code, field):
    body = json.loads(V1_LINES[0]) | {"event_type": "step_assigned"} | patch
    with pytest.raises(events.ContractError) as err:
        events.decode(json.dumps(body).encode())
    assert (err.value.code, err.value.field) == (code, field)


def test_a_null_reception_point_means_unknown():
    body = json.loads(V1_LINES[0]) | {"reception_point": None, "beneficiary_group": None}
    e = events.decode(json.dumps(body).encode())
    assert e.reception_point is None and e.beneficiary_group is None


# --- the fold ---------------------------------------------------------------------------


def finished_dossier() -> list[DossierEvent]:
    return [
        ev(1, E.ACCEPTED, T0, due_at=T0 + timedelta(hours=8), reception_point=ReceptionPoint.COUNTER,
           beneficiary_group="bảo trợ xã hội"),
        ev(2, E.STEP_ASSIGNED, T0 + timedelta(minutes=5)),
        ev(3, E.RESULT_READY, T0 + timedelta(minutes=40)),
        ev(4, E.RESULT_RETURNED, T0 + timedelta(minutes=50)),
    ]


def test_a_rating_after_the_hand_back_is_taken_and_changes_nothing_of_the_lifecycle():
    before = fold(finished_dossier())
    outcome = apply(before, rated(5, T0 + timedelta(minutes=52), 2, complaint=True))
    after = outcome.state
    assert outcome.applied and not outcome.rejected
    assert (after.rating_score, after.rating_complaint, after.ratings, after.rated_via) == (2, True, 1, "hand_back")
    for name in ("status", "finished_at", "closed_by", "returned_at", "due_at", "original_due_at", "pauses",
                 "commune_code", "handling_commune_code", "procedure_code", "channel"):
        assert getattr(after, name) == getattr(before, name), name
    cal, cat = WorkCalendar(), default_catalogue()
    at = T0 + timedelta(days=2)
    assert classify(after, at, calendar=cal, catalogue=cat) == classify(before, at, calendar=cal, catalogue=cat)


def test_a_later_rating_replaces_the_score_but_a_complaint_stays():
    state = fold([*finished_dossier(), rated(5, T0 + timedelta(hours=1), 1, complaint=True),
                  rated(6, T0 + timedelta(days=1), 5, via="online")])
    assert (state.rating_score, state.rating_complaint, state.ratings, state.rated_via) == (5, True, 2, "online")


@pytest.mark.parametrize("upto", [1, 2, 3])
def test_a_rating_is_taken_at_any_status_once_the_dossier_exists(upto):
    history = finished_dossier()[:upto]
    state = fold([*history, rated(upto + 1, T0 + timedelta(minutes=45), 4)])
    assert state.rating_score == 4 and state.rejected == 0 and state.status == fold(history).status


def test_a_rating_cannot_open_a_dossier():
    outcome = apply(None, rated(1, T0, 4))
    assert outcome.rejected and outcome.rejected[0].code == "illegal_transition"


def test_reception_point_and_beneficiary_group_come_from_the_receipt_and_v1_events_leave_them_unknown():
    state = fold(finished_dossier())
    assert (state.reception_point, state.beneficiary_group) == ("counter", "bảo trợ xã hội")
    v1 = fold([events.decode(line) for line in V1_LINES[:1]])
    assert v1.reception_point is None and v1.beneficiary_group is None


def test_a_state_stored_before_11_still_loads():
    state = fold(finished_dossier())
    as_map = msgspec.to_builtins(state)
    for name in ("reception_point", "beneficiary_group", "rating_score", "rating_complaint", "ratings", "rated_at",
                 "rated_via"):
        as_map.pop(name)
    old = msgspec.msgpack.decode(msgspec.msgpack.encode(as_map), type=DossierState)
    assert old.reception_point is None and old.ratings == 0 and old.status == state.status
