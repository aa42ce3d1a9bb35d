"""A deterministic province simulator: commune one-stop desks emitting dossier lifecycles.

Everything random comes from one ``random.Random(seed)`` and everything timed
from a simulated clock, so the same configuration and seed give byte-identical
events. Events come out in occurred_at order across all communes, each dossier
with its own seq 1, 2, 3…; dossiers still in progress at the end of the
simulated period stay open, which is the backlog the IOC watches.
"""

from __future__ import annotations

import heapq
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from onestop.catalogue import Catalogue, default_catalogue
from onestop.communes import Commune, communes_of
from onestop.events import Channel, DossierEvent, EventType
from onestop.sla import legal_due
from onestop.workcal import WorkCalendar, default_calendar

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NAMESPACE = uuid.UUID("6f1b7f0e-3c55-4a8e-9d55-0e6c1d1a4b21")

# Weighted procedure mix at a commune desk: civil status and certification dominate volumes.
DEFAULT_MIX: dict[str, float] = {
    "2.000815": 30,  # certified copy from original
    "2.000884": 10,  # signature attestation
    "1.001193": 12,  # birth registration
    "1.000656": 4,  # death registration
    "1.000894": 4,  # marriage registration
    "2.000635": 6,  # civil-status extract copy
    "1.004873": 5,  # marital-status certificate
    "1.013978": 4,  # first land registration
    "1.013949": 3,  # land allocation / change of use
    "1.001776": 4,  # monthly social-assistance allowance
    "2.000720": 3,  # household-business registration change
}

DueFor = Callable[[str, datetime], datetime]


@dataclass(frozen=True)
class SimulationConfig:
    province_code: str = "42"
    communes: int | None = None  # first N communes in code order; None = all
    dossiers: int = 1000
    start: date = date(2026, 11, 2)
    days: int = 10  # calendar days of arrivals; the period ends at start + days
    seed: int = 42
    online_share: float = 0.40  # national full-process online share was ~40% in Nov 2025
    postal_share: float = 0.03
    refusal_rate: float = 0.02
    withdrawal_rate: float = 0.01
    supplement_rate: float = 0.05
    late_rate: float = 0.03
    procedure_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))


def legal_due_for(catalogue: Catalogue | None = None, calendar: WorkCalendar | None = None) -> DueFor:
    """The receipt's due date as a one-stop system issues it: the legal time of the procedure."""
    catalogue = catalogue or default_catalogue()
    calendar = calendar or default_calendar()

    def due_for(procedure_code: str, accepted_at: datetime) -> datetime:
        procedure = catalogue.get(procedure_code, accepted_at)
        return legal_due(accepted_at, procedure, calendar).due_at.astimezone(timezone.utc)

    return due_for


class _Dossier:
    """Builds one dossier's timeline; holds the running seq so events number themselves."""

    def __init__(self, cfg: SimulationConfig, rng: random.Random, commune: Commune, number: int, at: datetime):
        self.cfg, self.rng, self.commune = cfg, rng, commune
        self.dossier_id = f"H{commune.province_code}.{commune.code}-{at.astimezone(VN):%y%m%d}-{number:05d}"
        self.procedure = rng.choices(list(cfg.procedure_mix), weights=list(cfg.procedure_mix.values()))[0]
        u = rng.random()
        self.channel = (
            Channel.ONLINE if u < cfg.online_share
            else Channel.POSTAL if u < cfg.online_share + cfg.postal_share
            else Channel.IN_PERSON
        )
        self.events: list[DossierEvent] = []

    def emit(self, event_type: EventType, at: datetime, **extra: object) -> None:
        seq = len(self.events) + 1
        self.events.append(
            DossierEvent(
                event_id=str(uuid.uuid5(NAMESPACE, f"{self.cfg.seed}:{self.dossier_id}:{seq}")),
                event_type=event_type,
                dossier_id=self.dossier_id,
                seq=seq,
                occurred_at=at.astimezone(timezone.utc).replace(microsecond=0),
                commune_code=self.commune.code,
                procedure_code=self.procedure,
                channel=self.channel,
                source="simulator",
                **extra,
            )
        )


def _office_moment(rng: random.Random, day: date) -> datetime:
    """A reception time inside office hours, busier in the morning."""
    morning = rng.random() < 0.65
    start, span = (time(7, 30), 240) if morning else (time(13, 0), 240)
    minutes = rng.randrange(span)
    return datetime.combine(day, start, VN) + timedelta(minutes=minutes, seconds=rng.randrange(60))


def _arrival_days(cfg: SimulationConfig) -> list[date]:
    days = [cfg.start + timedelta(days=i) for i in range(cfg.days)]
    return [d for d in days if d.weekday() < 5] or days


def _lifecycle(d: _Dossier, received: datetime, due_for: DueFor) -> None:
    """Append the dossier's whole life; the caller drops what lies beyond the simulated period."""
    rng, cfg = d.rng, d.cfg
    accepted = received
    if d.channel is not Channel.IN_PERSON:
        d.emit(EventType.SUBMITTED, received)
        accepted = received + timedelta(minutes=rng.randrange(20, 240))
    if rng.random() < cfg.refusal_rate:
        d.emit(EventType.REFUSED_AT_RECEPTION, accepted, reason="hồ sơ không thuộc thẩm quyền")
        return
    due = due_for(d.procedure, accepted)
    d.emit(EventType.ACCEPTED, accepted, due_at=due)
    budget = max((due - accepted).total_seconds(), 3600.0)
    share = rng.uniform(1.02, 1.6) if rng.random() < cfg.late_rate else rng.uniform(0.05, 0.95)
    finish = accepted + timedelta(seconds=budget * share)
    t = accepted + timedelta(seconds=budget * share * 0.1)
    d.emit(EventType.STEP_ASSIGNED, t, step="chuyên viên")
    if rng.random() < cfg.withdrawal_rate:
        d.emit(EventType.WITHDRAWAL_REQUESTED, t + timedelta(hours=rng.uniform(1, 30)))
        return
    if rng.random() < cfg.supplement_rate:
        asked = t + timedelta(seconds=budget * share * 0.2)
        back = asked + timedelta(days=rng.uniform(0.5, 4))
        d.emit(EventType.SUPPLEMENT_REQUESTED, asked, reason="thiếu giấy tờ")
        d.emit(EventType.SUPPLEMENT_RECEIVED, back)
        finish += back - asked
        t = back
    d.emit(EventType.STEP_COMPLETED, max(t, finish - timedelta(seconds=budget * share * 0.05)), step="chuyên viên")
    d.emit(EventType.RESULT_READY, finish)
    d.emit(EventType.RESULT_RETURNED, finish + timedelta(hours=rng.expovariate(1 / 20)))


def simulate(cfg: SimulationConfig, due_for: DueFor | None = None) -> Iterator[DossierEvent]:
    """Yield the province's events in occurred_at order, ending at start + days."""
    due_for = due_for or legal_due_for()
    rng = random.Random(cfg.seed)
    communes = list(communes_of(cfg.province_code))[: cfg.communes]
    end = datetime.combine(cfg.start + timedelta(days=cfg.days), time(0), VN).astimezone(timezone.utc)
    days = _arrival_days(cfg)
    arrivals = sorted(_office_moment(rng, rng.choice(days)) for _ in range(cfg.dossiers))
    heap: list[tuple[datetime, str, int, DossierEvent]] = []
    counters: dict[str, int] = {}
    for at in arrivals:
        commune = rng.choice(communes)
        counters[commune.code] = counters.get(commune.code, 0) + 1
        d = _Dossier(cfg, rng, commune, counters[commune.code], at)
        _lifecycle(d, at, due_for)
        while heap and heap[0][0] <= at:
            yield heapq.heappop(heap)[3]
        for e in d.events:
            if e.occurred_at < end:
                heapq.heappush(heap, (e.occurred_at, e.dossier_id, e.seq, e))
    while heap:
        yield heapq.heappop(heap)[3]
