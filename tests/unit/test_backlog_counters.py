from datetime import datetime, timezone

from onestop.events import Channel, DossierEvent, EventType
from onestop.fold import apply
from streams.backlog import BacklogCounters

T = datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc)


def ev(dossier: str, seq: int, kind: EventType, commune: str = "18073", **kw) -> DossierEvent:
    return DossierEvent(event_id=f"{dossier}-{seq}", event_type=kind, dossier_id=dossier, seq=seq, occurred_at=T,
                        commune_code=commune, procedure_code="2.000815", channel=Channel.IN_PERSON, **kw)


def run(counters: BacklogCounters, partition: int, evs: list[DossierEvent], states: dict) -> None:
    for offset, e in enumerate(evs):
        before = states.get(e.dossier_id)
        after = apply(before, e).state
        states[e.dossier_id] = after
        counters.observe(partition, offset, e.occurred_at, before, after)


def test_accept_opens_and_result_ready_closes():
    c, states = BacklogCounters(), {}
    run(c, 0, [ev("A", 1, EventType.ACCEPTED, due_at=T), ev("B", 1, EventType.ACCEPTED, due_at=T)], states)
    assert c.totals() == {"18073": 2}
    run(c, 0, [ev("A", 2, EventType.RESULT_READY)], states)
    assert c.totals() == {"18073": 1}


def test_redelivered_event_changes_nothing():
    c, states = BacklogCounters(), {}
    accepted = ev("A", 1, EventType.ACCEPTED, due_at=T)
    run(c, 0, [accepted, accepted, accepted], states)
    assert c.totals() == {"18073": 1}


def test_drain_reports_absolute_counts_once_per_change():
    c, states = BacklogCounters(), {}
    run(c, 3, [ev("A", 1, EventType.ACCEPTED, due_at=T), ev("B", 1, EventType.ACCEPTED, "18754", due_at=T)], states)
    snaps = {(s.commune_code, s.source_partition): s.open_dossiers for s in c.drain()}
    assert snaps == {("18073", 3): 1, ("18754", 3): 1}
    assert c.drain() == []


def test_rebuild_recounts_only_the_given_partitions():
    c, states = BacklogCounters(), {}
    run(c, 0, [ev("A", 1, EventType.ACCEPTED, due_at=T)], states)
    run(c, 1, [ev("B", 1, EventType.ACCEPTED, due_at=T)], states)
    fresh = BacklogCounters()
    fresh.rebuild([(0, states["A"]), (1, states["B"])], {1})
    assert fresh.totals() == {"18073": 1}
    assert {(s.source_partition, s.open_dossiers) for s in fresh.drain()} == {(1, 1)}
