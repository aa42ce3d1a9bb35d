"""A deterministic province simulator: commune one-stop desks emitting dossier lifecycles.

Everything random comes from one injected ``random.Random`` (``seed`` by
default) and everything timed from the simulated period and the working
calendar, so the same configuration and seed give byte-identical events.
Events come out in occurred_at order across all communes, each dossier with its
own seq 1, 2, 3…; dossiers still in progress at the end of the period stay
open, which is the backlog the IOC watches.

The parts: ``sim_arrivals`` (when and where dossiers arrive), ``sim_lifecycle``
(what happens to each), ``sim_calendar`` (office hours as a number line). The
rates and the facts behind them are in docs/simulator.md.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from typing import Iterator

from onestop.catalogue import Catalogue, Procedure, TimeUnit, default_catalogue
from onestop.communes import Commune, UnknownProvince, communes_of
from onestop.events import DossierEvent
from onestop.sla import legal_due
from onestop.workcal import WorkCalendar, default_calendar
from producers.sim_arrivals import Arrivals, ArrivalRates, period_bounds, working_day_weights
from producers.sim_calendar import WorkAxis
from producers.sim_lifecycle import NAMESPACE, DueFor, Lifecycle, SimulationStats

__all__ = ["DEFAULT_MIX", "NAMESPACE", "Simulation", "SimulationConfig", "SimulationError", "SimulationStats",
           "dossiers_for_rate", "legal_due_for", "simulate"]

# Weighted procedure mix at a commune desk: certification and civil status dominate the volume.
# Every code must be in the catalogue (checked at start); weights are relative.
DEFAULT_MIX: dict[str, float] = {
    "2.000815": 30,  # certified copy from original
    "2.000884": 8,  # signature attestation
    "LOCAL-CT-0001": 3,  # attestation of contracts
    "1.001193": 10,  # birth registration
    "1.000689": 1,  # birth + parentage recognition
    "1.000656": 3,  # death registration
    "1.000894": 3,  # marriage registration
    "2.000635": 6,  # civil-status extract copy
    "1.004884": 1,  # re-registration of birth
    "1.004873": 5,  # marital-status certificate
    "1.013978": 4,  # first land registration
    "1.013949": 3,  # land allocation / change of use
    "1.001776": 4,  # monthly social-assistance allowance
    "1.001731": 1,  # funeral-cost support
    "1.001699": 1,  # disability certificate
    "1.010833": 1,  # relatives of people with meritorious services
    "2.000720": 3,  # household-business registration change
}


class SimulationError(ValueError):
    """A simulation that cannot run as configured; the message says what to change."""


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Defaults and their sources: docs/simulator.md."""

    province_code: str = "42"  # Hà Tĩnh, 69 communes
    communes: int | None = None  # first N communes in code order; None = all
    dossiers: int = 1000  # the main knob: dossiers arriving over the period (exact)
    start: date = date(2026, 11, 2)
    days: int = 10  # calendar days; the period ends at local midnight of start + days
    seed: int = 42
    not_before: datetime | None = None  # live mode: nothing arrives before this instant
    # channels and arrivals
    online_share: float = 0.30  # Hà Tĩnh 29.1% (2020); provinces 16.94%, national 39.98% (Nov 2025)
    postal_share: float = 0.02
    online_after_hours_share: float = 0.25  # of online submissions: evenings of working days
    morning_share: float = 0.60  # of office-hours arrivals: the first session
    commune_size_spread: float = 0.5  # sigma of the log-normal commune size
    daily_variation: float = 0.15  # sigma of the log-normal day-to-day variation
    desk_pickup_hours: float = 1.5  # median working hours until the desk takes up a remote submission
    # reception (no clock)
    refusal_at_reception_rate: float = 0.01
    withdrawal_before_acceptance_rate: float = 0.005  # of online and postal submissions
    reception_supplement_rate: float = 0.04
    reception_abandon_share: float = 0.15  # of reception supplement requests: the citizen never returns
    # processing (the clock runs)
    supplement_rate: float = 0.05
    second_supplement_rate: float = 0.05  # of dossiers with a processing-stage supplement
    supplement_wait_days: float = 2.0  # median working days until the supplement arrives
    financial_obligation_rate: float = 0.85  # of land dossiers
    financial_wait_days: float = 3.0
    hop_rate: float = 0.25  # inter-agency hop, of dossiers with a multi-day legal time
    inter_commune_share: float = 0.03  # of accepted dossiers: handled by another commune than the receiving one
    withdrawal_rate: float = 0.01
    refusal_rate: float = 0.005  # refused after acceptance
    stop_rate: float = 0.005  # processing stopped (form 05)
    late_rate: float = 0.02  # resolved after the original due date
    extension_rate: float = 0.4  # of late dossiers: an apology letter with a new date (form 04)
    # returning the result
    electronic_result_share: float = 0.5  # of online dossiers: the result goes to the e-store
    pickup_median_hours: float = 12.0  # median working hours from result ready to handed over
    pickup_median_hours_same_day: float = 2.0
    procedure_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))

    def __post_init__(self) -> None:
        problems = [f"{f.name} must be between 0 and 1, got {getattr(self, f.name)}" for f in fields(self)
                    if f.name.endswith(("_rate", "_share")) and not 0 <= getattr(self, f.name) <= 1]
        if self.online_share + self.postal_share > 1:
            problems.append("online_share + postal_share must not exceed 1")
        if self.online_after_hours_share >= 1 and self.online_share >= 1:
            problems.append("with online_share 1, online_after_hours_share must be below 1")
        if self.dossiers < 0:
            problems.append(f"dossiers must be >= 0, got {self.dossiers}")
        if self.days < 1:
            problems.append(f"days must be >= 1, got {self.days}")
        if self.communes is not None and self.communes < 1:
            problems.append(f"communes must be >= 1, got {self.communes}")
        if not self.procedure_mix or any(w < 0 for w in self.procedure_mix.values()) \
                or sum(self.procedure_mix.values()) <= 0:
            problems.append("procedure_mix needs positive weights")
        for name in ("commune_size_spread", "daily_variation"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        for name in ("desk_pickup_hours", "supplement_wait_days", "financial_wait_days", "pickup_median_hours",
                     "pickup_median_hours_same_day"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0")
        if self.not_before is not None and self.not_before.tzinfo is None:
            problems.append("not_before must carry a timezone")
        if problems:
            raise SimulationError("invalid simulation: " + "; ".join(problems))


def legal_due_for(catalogue: Catalogue | None = None, calendar: WorkCalendar | None = None) -> DueFor:
    """The receipt's due date as a one-stop system issues it: the legal time (``onestop.sla.legal_due``).

    Memoised: for day-based units the date depends only on the procedure version, the local day
    and whether the acceptance came after the cut-off or after hours (``legal_due``'s own
    inputs), so one call per such class serves the whole run. Hour-based units are not cached.
    """
    catalogue = catalogue or default_catalogue()
    calendar = calendar or default_calendar()
    cache: dict[tuple, datetime] = {}

    procedures: dict[tuple[str, date], Procedure] = {}

    def due_for(procedure_code: str, accepted_at: datetime) -> datetime:
        local = calendar.local(accepted_at)
        day = local.date()
        procedure = procedures.get((procedure_code, day))
        if procedure is None:
            procedure = procedures[(procedure_code, day)] = catalogue.get(procedure_code, day)
        if procedure.time_unit is TimeUnit.HOURS:
            return legal_due(accepted_at, procedure, calendar).due_at.astimezone(timezone.utc)
        late = (procedure.cutoff is not None and local.time() > procedure.cutoff) or local >= calendar.closes_at(day)
        key = (procedure_code, procedure.version, day, late)
        due = cache.get(key)
        if due is None:
            due = cache[key] = legal_due(accepted_at, procedure, calendar).due_at.astimezone(timezone.utc)
        return due

    return due_for


def _communes(cfg: SimulationConfig) -> tuple[Commune, ...]:
    try:
        return communes_of(cfg.province_code)[: cfg.communes]
    except UnknownProvince as exc:
        raise SimulationError(str(exc)) from None


def check_mix(cfg: SimulationConfig, catalogue: Catalogue) -> None:
    unknown = sorted(code for code in cfg.procedure_mix if code not in catalogue)
    if unknown:
        raise SimulationError(f"procedure_mix names procedure(s) not in the catalogue {catalogue.source}: "
                              f"{', '.join(unknown)}; known codes: {', '.join(catalogue.codes())}")


def dossiers_for_rate(cfg: SimulationConfig, per_commune_day: float, calendar: WorkCalendar | None = None) -> int:
    """How many dossiers make ``per_commune_day`` per commune per working day over ``cfg``'s period."""
    calendar = calendar or default_calendar()
    not_before = int(cfg.not_before.timestamp()) if cfg.not_before else None
    days = working_day_weights(calendar, cfg.start, cfg.days, cfg, not_before)
    working_days = sum(b.weight for _, bins in days for b in bins)
    return round(per_commune_day * len(_communes(cfg)) * working_days)


class Simulation:
    """One run: ``events()`` yields the period's events in order; ``stats`` fills in as it goes."""

    def __init__(self, cfg: SimulationConfig, *, rng: random.Random | None = None,
                 calendar: WorkCalendar | None = None, catalogue: Catalogue | None = None,
                 due_for: DueFor | None = None) -> None:
        self.cfg = cfg
        self.calendar = calendar or default_calendar()
        self.catalogue = catalogue or default_catalogue()
        check_mix(cfg, self.catalogue)
        self.communes = _communes(cfg)
        self.start_ts, self.end_ts = period_bounds(self.calendar, cfg.start, cfg.days)
        not_before = int(cfg.not_before.timestamp()) if cfg.not_before else None
        if not_before is not None and not self.start_ts <= not_before < self.end_ts:
            raise SimulationError(f"not_before {cfg.not_before} lies outside the period {cfg.start} + {cfg.days} days")
        self.begin_ts = not_before if not_before is not None else self.start_ts
        self.rng = rng if rng is not None else random.Random(cfg.seed)
        rates: ArrivalRates = cfg
        self.arrivals = Arrivals(rates, self.rng, self.calendar, self.communes, cfg.start, cfg.days, not_before)
        if cfg.dossiers and not self.arrivals.days:
            since = f"{self.calendar.local(cfg.not_before):%Y-%m-%d %H:%M}" if cfg.not_before else str(cfg.start)
            raise SimulationError(f"no working day between {since} and {cfg.start + timedelta(days=cfg.days - 1)} "
                                  f"({self.calendar.version}): dossiers arrive on working days only, in office "
                                  f"hours or (online) until 22:00; lengthen the period")
        self.stats = SimulationStats()
        self._started = False
        # A live run started mid-day gets its own dossier numbers, so it never reuses an earlier run's ids.
        tag = f"-{self.calendar.local(cfg.not_before):%H%M%S}" if cfg.not_before else ""
        axis = WorkAxis(self.calendar, cfg.start - timedelta(days=1))
        self.lifecycle = Lifecycle(cfg, self.rng, axis, self.catalogue, self.calendar,
                                   due_for or legal_due_for(self.catalogue, self.calendar), self.end_ts,
                                   self.stats, tag, communes=self.communes)

    @property
    def working_days(self) -> float:
        """Working days of arrivals in the period (a live run's first day counts in part)."""
        return sum(b.weight for _, bins in self.arrivals.days for b in bins)

    def events(self) -> Iterator[DossierEvent]:
        """Merge the dossiers' timelines: each dossier is built when it arrives, then held until due out.

        One pass per Simulation: the random generator moves on. Build another Simulation to replay.
        """
        if self._started:
            raise SimulationError("Simulation.events() runs once; build a new Simulation to replay")
        self._started = True
        heap: list[tuple[int, str, int, DossierEvent]] = []
        push, pop = heapq.heappush, heapq.heappop
        for day in self.arrivals:
            for arrival in day:
                while heap and heap[0][0] < arrival.ts:
                    yield pop(heap)[3]
                for ts, e in self.lifecycle.build(arrival):
                    push(heap, (ts, e.dossier_id, e.seq, e))
        while heap:
            yield pop(heap)[3]


def simulate(cfg: SimulationConfig, due_for: DueFor | None = None) -> Iterator[DossierEvent]:
    """Yield the province's events in occurred_at order, ending at start + days."""
    return Simulation(cfg, due_for=due_for).events()
