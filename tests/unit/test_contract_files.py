import json
from pathlib import Path

from onestop import dlq
from onestop.events import json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_json_schema_matches_the_contract():
    on_disk = json.loads((ROOT / "onestop/schema/dossier-event.v1.1.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(json_schema()))


def test_dead_letter_keeps_the_original_bytes_exactly():
    raw = b"\xff\xfe not json at all"
    record = dlq.decode(dlq.encode(dlq.dead_letter(raw, "malformed_json", "bad", "test")))
    assert record.original == raw
    assert record.reason_code == "malformed_json"
