from collections import Counter
from datetime import date

from onestop import events
from onestop.communes import communes_of
from onestop.fold import fold
from producers.simulator import SimulationConfig, simulate

CFG = SimulationConfig(communes=5, dossiers=300, seed=11, start=date(2026, 11, 2), days=10)


def test_same_seed_gives_byte_identical_events():
    first = b"\n".join(events.encode(e) for e in simulate(CFG))
    second = b"\n".join(events.encode(e) for e in simulate(CFG))
    assert first == second


def test_another_seed_gives_other_events():
    other = SimulationConfig(communes=5, dossiers=300, seed=12, start=date(2026, 11, 2), days=10)
    assert [e.event_id for e in simulate(CFG)] != [e.event_id for e in simulate(other)]


def test_events_are_in_time_order_and_numbered_per_dossier():
    evs = list(simulate(CFG))
    assert [e.occurred_at for e in evs] == sorted(e.occurred_at for e in evs)
    seqs: dict[str, list[int]] = {}
    for e in evs:
        seqs.setdefault(e.dossier_id, []).append(e.seq)
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())
    assert len(seqs) == CFG.dossiers


def test_uses_real_commune_codes_of_the_province():
    real = {c.code for c in communes_of("42")[:5]}
    used = {e.commune_code for e in simulate(CFG)}
    assert used <= real and len(used) == 5


def test_every_lifecycle_is_legal_and_some_stay_open():
    per: dict[str, list] = {}
    for e in simulate(CFG):
        per.setdefault(e.dossier_id, []).append(e)
    states = [fold(v) for v in per.values()]
    assert sum(s.rejected for s in states) == 0
    open_count = sum(s.is_open for s in states)
    assert 0 < open_count < len(states)


def test_online_share_is_close_to_configured():
    firsts = [e for e in simulate(SimulationConfig(communes=5, dossiers=2000, seed=3)) if e.seq == 1]
    share = Counter(e.channel for e in firsts)[events.Channel.ONLINE] / len(firsts)
    assert 0.35 < share < 0.45
