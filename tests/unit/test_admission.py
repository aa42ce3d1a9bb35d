"""Admission (``onestop.admission``): the plausibility policy, and that every entrance applies it."""

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from onestop import events
from onestop.admission import AdmissionRules, admit, rules_from
from onestop.catalogue import default_catalogue
from onestop.events import Channel, DossierEvent, EventType
from onestop.fold import fold
from onestop.settings import Settings
from producers.importer import import_file
from producers.run import admitted
from producers.simulator import SimulationConfig, simulate

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=VN)
RULES = AdmissionRules(default_catalogue())


def ev(at: datetime = NOW, kind: EventType = EventType.SUBMITTED, **kw) -> DossierEvent:
    base = dict(event_id="e-1", event_type=kind, dossier_id="D1", seq=1, occurred_at=at, commune_code="18073",
                procedure_code="1.001193", channel=Channel.ONLINE)
    return DossierEvent(**{**base, **kw})


def code(event: DossierEvent, rules: AdmissionRules = RULES, received_at: datetime = NOW) -> str | None:
    refusal = admit(event, rules, received_at=received_at)
    return refusal.code if refusal else None


def test_a_plausible_event_is_admitted():
    assert code(ev()) is None


def test_occurred_at_may_run_ahead_of_the_receiver_by_the_margin_and_no_more():
    margin = RULES.future_margin
    assert code(ev(NOW + margin)) is None
    assert code(ev(NOW + margin + timedelta(milliseconds=1))) == "occurred_in_future"
    assert code(ev(datetime(2099, 1, 1, tzinfo=VN))) == "occurred_in_future"


def test_the_floor_of_live_entrances_and_the_earlier_floor_of_imports():
    old = datetime(2020, 5, 4, 9, 0, tzinfo=VN)
    assert code(ev(old)) == "occurred_before_floor"
    assert code(ev(old, source="importer:export-2020.csv")) is None
    assert code(ev(datetime(2014, 12, 31, 23, 59, tzinfo=VN), source="importer:x.csv")) == "occurred_before_floor"
    assert code(ev(datetime(2015, 1, 1, 0, 0, tzinfo=VN), source="importer:x.csv")) is None
    assert code(ev(datetime(2025, 6, 30, 23, 59, tzinfo=VN))) == "occurred_before_floor"
    assert code(ev(datetime(2025, 7, 1, 0, 0, tzinfo=VN))) is None


def test_a_due_date_before_the_acceptance_day_is_refused_but_later_the_same_day_is_fine():
    accepted = datetime(2026, 11, 3, 9, 0, tzinfo=VN)
    assert code(ev(accepted, EventType.ACCEPTED, due_at=datetime(2026, 11, 2, 17, 0, tzinfo=VN))) == \
        "due_before_acceptance"
    # 00:00 local of the acceptance day: a source that writes dates only; by date it is not before.
    assert code(ev(accepted, EventType.ACCEPTED, due_at=datetime(2026, 11, 3, 0, 0, tzinfo=VN))) is None
    # 23:00 UTC on 2 Nov is 06:00 on 3 Nov in Vietnam: the same day.
    assert code(ev(accepted, EventType.ACCEPTED, due_at=datetime(2026, 11, 2, 23, 0, tzinfo=timezone.utc))) is None


def test_an_unknown_procedure_is_refused_unless_the_catalogue_check_is_off():
    assert code(ev(procedure_code="9.999999")) == "unknown_procedure"
    assert code(ev(procedure_code="9.999999"), AdmissionRules(None)) is None


def test_an_event_built_in_code_must_survive_its_own_encoding():
    # msgspec does not type-check a constructor: the contract's decoder would refuse this channel.
    assert code(ev(channel=7)) == "invalid_field"


def test_the_contract_refuses_unstorable_values_even_when_an_event_is_built_in_code():
    with pytest.raises(ValueError, match="seq"):
        ev(seq=10**30)
    with pytest.raises(ValueError, match="dossier_id"):
        ev(dossier_id="D1\x00")
    with pytest.raises(ValueError, match="occurred_at"):
        ev(datetime(9999, 1, 1, tzinfo=timezone.utc))


def test_the_policy_is_read_from_the_settings(monkeypatch):
    monkeypatch.setenv("ONESTOP_OCCURRED_AT_MAX_AHEAD_S", "60")
    monkeypatch.setenv("ONESTOP_OCCURRED_AT_FLOOR", "2026-01-01")
    monkeypatch.setenv("ONESTOP_IMPORT_OCCURRED_AT_FLOOR", "2024-01-01")
    rules = rules_from(Settings(), default_catalogue())
    assert (rules.future_margin, rules.floor, rules.import_floor) == (
        timedelta(seconds=60), date(2026, 1, 1), date(2024, 1, 1))
    assert code(ev(NOW + timedelta(seconds=61)), rules) == "occurred_in_future"
    assert code(ev(datetime(2025, 12, 31, tzinfo=VN)), rules) == "occurred_before_floor"


def test_a_floor_earlier_than_the_stores_can_hold_is_refused_at_start_up():
    with pytest.raises(ValidationError, match="1971"):
        Settings(occurred_at_floor=date(1960, 1, 1))


def test_the_fold_refuses_an_extension_dated_before_the_acceptance_and_goes_on():
    accepted = ev(datetime(2026, 11, 3, 9, 0, tzinfo=VN), EventType.ACCEPTED, procedure_code="2.000720",
                  due_at=datetime(2026, 11, 6, 17, 0, tzinfo=VN))
    extended = ev(datetime(2026, 11, 5, 9, 0, tzinfo=VN), EventType.EXTENDED, event_id="e-2", seq=2,
                  due_at=datetime(2026, 11, 1, 17, 0, tzinfo=VN))
    ready = ev(datetime(2026, 11, 6, 9, 0, tzinfo=VN), EventType.RESULT_READY, event_id="e-3", seq=3)
    state = fold([accepted, extended, ready])
    assert state.due_at == datetime(2026, 11, 6, 17, 0, tzinfo=VN) and state.extensions == 0
    assert state.rejected == 1 and state.status == 9


# --- the entrances ----------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.events, self.dead = [], []

    def publish(self, event) -> None:
        self.events.append(event)

    def dead_letter(self, record) -> None:
        self.dead.append(record)


def test_the_importer_refuses_implausible_rows_without_consuming_their_seq(tmp_path: Path):
    rows = [
        {"MaHoSo": "H1", "MaTTHC": "2.000720", "TrangThaiHoSo": 1, "KenhThucHien": 1, "MaDonVi": "18073",
         "ThoiDiemXuLy": "2099-11-02T08:00:00+07:00"},  # the future
        {"MaHoSo": "H1", "MaTTHC": "2.000720", "TrangThaiHoSo": 1, "KenhThucHien": 1, "MaDonVi": "18073",
         "ThoiDiemXuLy": "2016-03-02T08:00:00+07:00"},  # history: after the import floor
        {"MaHoSo": "H2", "MaTTHC": "2.000720", "TrangThaiHoSo": 1, "KenhThucHien": 1, "MaDonVi": "18073",
         "ThoiDiemXuLy": "2014-03-02T08:00:00+07:00"},  # before the import floor
        {"MaHoSo": "H3", "MaTTHC": "7.777777", "TrangThaiHoSo": 1, "KenhThucHien": 1, "MaDonVi": "18073",
         "ThoiDiemXuLy": "2026-11-02T08:00:00+07:00"},  # unknown procedure
    ]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    sink = Sink()
    summary = import_file(path, sink, clock=lambda: NOW)
    assert [(e.dossier_id, e.seq, e.occurred_at.year) for e in sink.events] == [("H1", 1, 2016)]
    assert summary.rejected == Counter({"occurred_in_future": 1, "occurred_before_floor": 1, "unknown_procedure": 1})
    assert sorted((d.reason_code, d.source) for d in sink.dead) == [
        ("occurred_before_floor", "importer:export.jsonl:3"), ("occurred_in_future", "importer:export.jsonl:1"),
        ("unknown_procedure", "importer:export.jsonl:4")]


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_the_simulators_publisher_dead_letters_what_lies_beyond_its_clock():
    evs = list(simulate(SimulationConfig(communes=2, dossiers=40, seed=8, start=date(2026, 11, 2), days=5)))
    middle = sorted(e.occurred_at for e in evs)[len(evs) // 2]
    sink, refused = Sink(), Counter()
    emit = admitted(sink, RULES, FixedClock(middle), refused)
    for e in evs:
        emit(e)
    latest = middle + RULES.future_margin
    assert sink.events == [e for e in evs if e.occurred_at <= latest]
    assert refused == Counter({"occurred_in_future": sum(e.occurred_at > latest for e in evs)})
    assert {(d.reason_code, d.event_id) for d in sink.dead} == {
        ("occurred_in_future", e.event_id) for e in evs if e.occurred_at > latest}
    assert all(events.decode(d.original).occurred_at > latest for d in sink.dead)
