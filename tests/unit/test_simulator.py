import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from statistics import median

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from onestop import events
from onestop.catalogue import default_catalogue
from onestop.communes import communes_of
from onestop.events import Channel, EventType
from onestop.fold import fold
from onestop.settings import Settings
from onestop.sla import Timeliness, check_receipt, classify, legal_due
from onestop.workcal import VN_TZ, WorkCalendar
from producers.run import Pacer, run_simulation
from producers.sim_calendar import WorkAxis
from producers.sim_lifecycle import NAMESPACE, uuid5_text
from producers.simulator import (
    Simulation, SimulationConfig, SimulationError, dossiers_for_rate, legal_due_for, simulate,
)

E = EventType
CAL = WorkCalendar()
CATALOGUE = default_catalogue()
CFG = SimulationConfig(communes=5, dossiers=300, seed=11, start=date(2026, 11, 2), days=10)
# Every rare path often: for the property tests.
BUSY = dict(late_rate=0.3, extension_rate=0.6, supplement_rate=0.3, second_supplement_rate=0.3, withdrawal_rate=0.05,
            refusal_rate=0.05, stop_rate=0.05, refusal_at_reception_rate=0.05, reception_supplement_rate=0.2,
            withdrawal_before_acceptance_rate=0.05, hop_rate=0.5)


def encoded(cfg: SimulationConfig) -> bytes:
    return b"\n".join(events.encode(e) for e in simulate(cfg))


def by_dossier(evs) -> dict[str, list]:
    per: dict[str, list] = {}
    for e in evs:
        per.setdefault(e.dossier_id, []).append(e)
    return per


def in_office_hours(at: datetime) -> bool:
    local = CAL.local(at)
    return any(start <= local <= end for start, end in CAL.sessions(local.date()))


# --- determinism ----------------------------------------------------------------------


def test_same_seed_gives_byte_identical_events():
    first, second = encoded(CFG), encoded(CFG)
    assert first == second
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_the_digest_does_not_depend_on_the_process_or_its_hash_seed():
    """No set or dict order leaks in: other processes with other PYTHONHASHSEEDs give the same bytes."""
    code = ("import hashlib; from datetime import date; from onestop import events; "
            "from producers.simulator import SimulationConfig, simulate; "
            "cfg = SimulationConfig(communes=5, dossiers=300, seed=11, start=date(2026, 11, 2), days=10); "
            "print(hashlib.sha256(b'\\n'.join(events.encode(e) for e in simulate(cfg))).hexdigest())")
    here = hashlib.sha256(encoded(CFG)).hexdigest()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == here


def test_the_mix_order_does_not_matter():
    mix = dict(reversed(list(CFG.procedure_mix.items())))
    assert encoded(SimulationConfig(**{**CFG.__dict__, "procedure_mix": mix})) == encoded(CFG)


def test_another_seed_gives_other_events():
    other = SimulationConfig(communes=5, dossiers=300, seed=12, start=date(2026, 11, 2), days=10)
    assert [e.event_id for e in simulate(CFG)] != [e.event_id for e in simulate(other)]


def test_event_ids_are_uuid5_of_seed_dossier_and_seq():
    e = next(iter(simulate(CFG)))
    assert e.event_id == str(uuid.uuid5(NAMESPACE, f"{CFG.seed}:{e.dossier_id}:{e.seq}"))


@given(st.text(max_size=40))
def test_fast_uuid5_matches_the_standard_library(name):
    assert uuid5_text(hashlib.sha1(NAMESPACE.bytes), name) == str(uuid.uuid5(NAMESPACE, name))


# --- shape of the stream --------------------------------------------------------------


def test_events_are_in_time_order_and_numbered_per_dossier():
    evs = list(simulate(CFG))
    assert [e.occurred_at for e in evs] == sorted(e.occurred_at for e in evs)
    seqs = {d: [e.seq for e in v] for d, v in by_dossier(evs).items()}
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())
    assert len(seqs) == CFG.dossiers


def test_uses_real_commune_codes_of_the_province():
    real = {c.code for c in communes_of("42")[:5]}
    used = {e.commune_code for e in simulate(CFG)}
    assert used <= real and len(used) == 5


def test_other_provinces_work_too():
    evs = list(simulate(SimulationConfig(province_code="12", communes=3, dossiers=40, seed=1)))
    assert {e.commune_code for e in evs} <= {c.code for c in communes_of("12")}
    assert all(e.dossier_id.startswith("H12.") for e in evs)


def test_every_lifecycle_is_legal_and_some_stay_open():
    states = [fold(v) for v in by_dossier(simulate(CFG)).values()]
    assert sum(s.rejected for s in states) == 0
    open_count = sum(s.is_open for s in states)
    assert 0 < open_count < len(states)


def test_nothing_falls_outside_the_period():
    sim = Simulation(CFG)
    evs = list(sim.events())
    assert min(e.occurred_at for e in evs) >= datetime.combine(CFG.start, time.min, VN_TZ)
    assert max(e.occurred_at for e in evs) < datetime.combine(CFG.start + timedelta(days=CFG.days), time.min, VN_TZ)


def test_online_share_of_accepted_dossiers_is_close_to_configured():
    for share in (0.17, 0.40):
        accepted = [e for e in simulate(SimulationConfig(communes=5, dossiers=3000, seed=3, online_share=share))
                    if e.event_type is E.ACCEPTED]
        online = Counter(e.channel for e in accepted)[Channel.ONLINE] / len(accepted)
        assert abs(online - share) < 0.03


# --- the working calendar --------------------------------------------------------------


def test_arrivals_only_on_working_days_and_mornings_are_busier():
    # 2026-08-22 is a make-up Saturday; 31 Aug, 1 and 2 Sep are holidays.
    cfg = SimulationConfig(communes=10, dossiers=3000, seed=5, start=date(2026, 8, 20), days=20)
    firsts = [e for e in simulate(cfg) if e.seq == 1]
    days = {CAL.local_date(e.occurred_at) for e in firsts}
    assert all(CAL.is_working_day(d) for d in days)
    assert date(2026, 8, 22) in days and not days & {date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2)}
    desk = [CAL.local(e.occurred_at).time() for e in firsts if e.channel is Channel.IN_PERSON]
    assert all(time(7, 30) <= t < time(11, 30) or time(13, 0) <= t < time(17, 0) for t in desk)
    assert sum(t < time(12) for t in desk) > 1.3 * sum(t > time(12) for t in desk)


def test_online_dossiers_may_come_in_the_evening_but_are_accepted_in_office_hours():
    evs = list(simulate(SimulationConfig(communes=5, dossiers=2000, seed=8, online_share=0.6)))
    submitted = [e for e in evs if e.event_type is E.SUBMITTED and e.channel is Channel.ONLINE]
    assert any(CAL.local(e.occurred_at).time() >= time(17, 0) for e in submitted)
    assert all(in_office_hours(e.occurred_at) for e in evs if e.event_type is E.ACCEPTED)


def test_a_period_without_working_days_is_refused():
    with pytest.raises(SimulationError, match="no working day"):
        Simulation(SimulationConfig(communes=2, dossiers=10, start=date(2026, 11, 7), days=2))  # Sat + Sun


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)),
       st.integers(min_value=1, max_value=40 * 8 * 3600))
@settings(max_examples=200, deadline=None)
def test_work_axis_agrees_with_the_calendar(at, seconds):
    at = at.replace(microsecond=0, tzinfo=VN_TZ)
    axis = WorkAxis(CAL, date(2025, 12, 20))
    expected = CAL.add_working_time(at, timedelta(seconds=seconds))
    assert axis.add(int(at.timestamp()), seconds) == int(expected.timestamp())
    assert axis.add(int(at.timestamp()), 0) == int(CAL.clock_start(at).timestamp())


@given(st.sampled_from(CATALOGUE.codes()),
       st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)))
@settings(max_examples=200, deadline=None)
def test_memoised_due_dates_equal_legal_due(code, at):
    due_for = legal_due_for(CATALOGUE, CAL)
    at = at.replace(microsecond=0, tzinfo=VN_TZ)
    due_for(code, at.replace(hour=8))  # warm the cache with another time of the same day
    assert due_for(code, at) == legal_due(at, CATALOGUE.get(code, at), CAL).due_at


# --- lifecycles: legal for the fold, honest for the SLA clock ------------------------


@given(seed=st.integers(0, 2**32 - 1), communes=st.integers(1, 6), dossiers=st.integers(1, 60),
       start=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 20)), days=st.integers(1, 21),
       busy=st.booleans(), online=st.floats(0, 0.9))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_lifecycle_is_legal_and_every_receipt_valid(seed, communes, dossiers, start, days, busy, online):
    cfg = SimulationConfig(communes=communes, dossiers=dossiers, seed=seed, start=start, days=days,
                           online_share=online, **(BUSY if busy else {}))
    try:
        sim = Simulation(cfg)
    except SimulationError:
        return  # a period with no working day
    evs = list(sim.events())
    per = by_dossier(evs)
    assert len(per) == dossiers
    end = datetime.fromtimestamp(sim.end_ts, timezone.utc)
    overdue = set(sim.stats.overdue_ids)
    for dossier_id, dossier in per.items():
        state = fold(dossier)
        assert state.rejected == 0, [e.event_type.value for e in dossier]
        assert [e.seq for e in dossier] == list(range(1, len(dossier) + 1))
        for e in dossier:
            if e.event_type is E.ACCEPTED:
                assert not check_receipt(e.occurred_at, e.due_at, CATALOGUE.get(e.procedure_code, e.occurred_at),
                                         CAL).flagged
            if e.seq > 1 and e.event_type is not E.WITHDRAWAL_REQUESTED:
                assert in_office_hours(e.occurred_at), e
        if state.accepted_at is not None and state.finished_at is not None:
            verdict = classify(state, end, calendar=CAL, catalogue=CATALOGUE)
            assert (verdict.timeliness is Timeliness.OVERDUE) == (dossier_id in overdue)


def test_the_late_share_follows_the_configured_rate():
    for late_rate in (0.005, 0.035):
        sim = Simulation(SimulationConfig(communes=10, dossiers=6000, seed=4, late_rate=late_rate, days=20))
        for _ in sim.events():
            pass
        planned = sim.stats.planned_overdue / sim.stats.accepted
        # plus the rare second processing-stage supplement, which the national calculator counts as overdue
        assert late_rate * 0.7 < planned < late_rate * 1.3 + 0.004


def test_extension_letters_come_a_working_day_ahead_with_a_later_date():
    cfg = SimulationConfig(communes=8, dossiers=3000, seed=6, late_rate=0.3, extension_rate=1.0, days=30)
    letters = 0
    for dossier in by_dossier(simulate(cfg)).values():
        receipt = next((e for e in dossier if e.event_type is E.ACCEPTED), None)
        for e in dossier:
            if e.event_type is E.EXTENDED:
                letters += 1
                assert e.due_at > receipt.due_at
                assert CAL.working_days_between(CAL.local_date(e.occurred_at), CAL.local_date(receipt.due_at)) >= 1
    assert letters > 50


def test_rare_paths_all_occur_and_financial_waits_are_land_only():
    evs = list(simulate(SimulationConfig(communes=8, dossiers=4000, seed=9, days=30, **BUSY)))
    kinds = Counter(e.event_type for e in evs)
    assert set(kinds) == set(EventType) - {E.DUE_DATE_CORRECTED, E.RATED}  # ratings: only with rating_rate > 0
    land = {p.code for p in CATALOGUE if p.field == "Đất đai"}
    assert {e.procedure_code for e in evs if e.event_type is E.FINANCIAL_OBLIGATION_REQUESTED} <= land
    states = [fold(v) for v in by_dossier(evs).values()]
    assert any(s.processing_supplements == 2 for s in states)
    assert {e.step for e in evs if e.step} >= {"Văn phòng đăng ký đất đai", "lãnh đạo UBND xã ký duyệt"}


def test_pickup_lag_is_hours_to_days():
    evs = list(simulate(SimulationConfig(communes=5, dossiers=3000, seed=2, days=30)))
    lags = []
    for dossier in by_dossier(evs).values():
        ready = [e.occurred_at for e in dossier if e.event_type is E.RESULT_READY]
        returned = [e.occurred_at for e in dossier if e.event_type is E.RESULT_RETURNED]
        if ready and returned:
            lags.append((returned[0] - ready[0]).total_seconds() / 3600)
    assert all(lag >= 0 for lag in lags)
    assert 0.5 < median(lags) < 48 and max(lags) > 48


# --- configuration ---------------------------------------------------------------------


def test_procedure_mix_must_name_catalogue_codes():
    with pytest.raises(SimulationError, match="9.999999"):
        Simulation(SimulationConfig(procedure_mix={"2.000815": 1, "9.999999": 1}))


def test_rates_are_checked():
    with pytest.raises(SimulationError, match="late_rate"):
        SimulationConfig(late_rate=1.5)
    with pytest.raises(SimulationError, match="online_share"):
        SimulationConfig(online_share=0.9, postal_share=0.2)


def test_unknown_province_is_a_clear_error():
    with pytest.raises(SimulationError, match="99"):
        Simulation(SimulationConfig(province_code="99"))


def test_per_commune_day_converts_to_a_total():
    cfg = SimulationConfig(communes=4, start=date(2026, 11, 2), days=7)  # Mon..Sun: five working days
    assert dossiers_for_rate(cfg, 25) == 25 * 4 * 5


# --- live mode and pacing --------------------------------------------------------------


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.t, self.slept = now, 0.0

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.t += timedelta(seconds=seconds)


def test_live_mode_starts_now_and_never_reuses_earlier_ids():
    now = datetime(2026, 11, 3, 14, 5, tzinfo=VN_TZ)
    cfg = SimulationConfig(communes=3, dossiers=50, seed=1, start=now.date(), days=2, not_before=now)
    evs = list(simulate(cfg))
    assert min(e.occurred_at for e in evs) >= now
    assert all("-140500-" in e.dossier_id for e in evs)
    assert sum(s.rejected for s in map(fold, by_dossier(evs).values())) == 0


def test_pacer_holds_events_until_their_simulated_time():
    clock = FakeClock(datetime(2030, 1, 1, tzinfo=timezone.utc))
    pacer = Pacer(clock, speed=3600)
    first = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
    pacer.wait_until(first)
    assert clock.slept == 0
    pacer.wait_until(first + timedelta(hours=10))
    assert clock.slept == pytest.approx(10.0)
    Pacer(clock, speed=0).wait_until(first + timedelta(days=5))
    assert clock.slept == pytest.approx(10.0)


def test_run_simulation_live_sends_each_event_when_it_is_due():
    now = datetime(2026, 11, 3, 9, 0, tzinfo=timezone.utc)
    clock = FakeClock(now)
    cfg = SimulationConfig(communes=2, dossiers=20, seed=3, start=CAL.local_date(now), days=1, not_before=now)
    out = io.BytesIO()
    run_simulation(Settings(), cfg, dry_run=True, live=True, clock=clock, out=out,
                   console=Console(file=io.StringIO()))
    last = max(events.decode(line).occurred_at for line in out.getvalue().splitlines())
    assert clock.t >= last and clock.slept == pytest.approx((clock.t - now).total_seconds())


def test_dry_run_prints_json_lines_and_a_summary():
    out, err = io.BytesIO(), io.StringIO()
    counts = run_simulation(Settings(), CFG, dry_run=True, out=out, console=Console(file=err, width=120))
    lines = out.getvalue().splitlines()
    assert [events.decode(line) for line in lines] == list(simulate(CFG))
    assert sum(counts.values()) == len(lines) and counts["accepted"] > 0
    report = err.getvalue()
    for heading in ("Events emitted", "Dossiers", "online share", "expected late", "median"):
        assert heading in report


def test_cli_simulate_dry_run_and_errors():
    from onestop_cli import app

    result = CliRunner().invoke(app, ["simulate", "--dry-run", "-c", "2", "-n", "20", "--rate", "late_rate=0.1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len({r["dossier_id"] for r in rows}) == 20
    assert CliRunner().invoke(app, ["simulate", "--dry-run", "--rate", "bogus=1"]).exit_code == 2
    assert CliRunner().invoke(app, ["simulate", "--dry-run", "-n", "5", "-r", "10"]).exit_code == 2
