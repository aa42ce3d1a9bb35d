"""A deterministic province simulator: commune one-stop desks emitting dossier lifecycles.

Everything random comes from one injected ``random.Random`` (``seed`` by
default) and everything timed from the simulated period and the working
calendar, so the same configuration and seed give byte-identical events.
Events come out in occurred_at order across all communes, each dossier with its
own seq 1, 2, 3…; dossiers still in progress at the end of the period stay
open, which is the backlog the IOC watches.

The parts: ``sim_config`` (what to simulate, at which rates), ``sim_arrivals`` (when and where dossiers arrive), ``sim_lifecycle``
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
from producers.sim_config import DEFAULT_MIX, SimulationConfig, SimulationError
from producers.sim_desk import Desk
from producers.sim_lifecycle import NAMESPACE, DueFor, Lifecycle, SimulationStats
from producers.sim_network import Network, SimDelivery, in_arrival_order
from producers.sim_practices import declared_practices, simulation_calendar

__all__ = ["DEFAULT_MIX", "NAMESPACE", "Simulation", "SimulationConfig", "SimulationError", "SimulationStats",
           "dossiers_for_rate", "legal_due_for", "simulate"]

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
        # Service practices (None unless the run simulates them): the calendar the desks follow.
        self.service = simulation_calendar(cfg, self.communes, self.calendar)
        self.declared = declared_practices(self.service, self.communes, cfg.start, cfg.days)
        self.arrivals = Arrivals(rates, self.rng, self.calendar, self.communes, cfg.start, cfg.days, not_before,
                                 service=self.service, service_volume=cfg.service_day_volume)
        if cfg.dossiers and not self.arrivals.days:
            since = f"{self.calendar.local(cfg.not_before):%Y-%m-%d %H:%M}" if cfg.not_before else str(cfg.start)
            raise SimulationError(f"no working day between {since} and {cfg.start + timedelta(days=cfg.days - 1)} "
                                  f"({self.calendar.version}): dossiers arrive on working days only, in office "
                                  f"hours or (online) until 22:00; lengthen the period")
        self.stats = SimulationStats()
        desk = Desk(cfg, self.service, self.catalogue, self.stats) if self.service is not None or cfg.rating_rate \
            else None
        self.network = Network(cfg, self.communes, self.calendar) if cfg.models_network else None
        self._started = False
        # A live run started mid-day gets its own dossier numbers, so it never reuses an earlier run's ids.
        tag = f"-{self.calendar.local(cfg.not_before):%H%M%S}" if cfg.not_before else ""
        axis = WorkAxis(self.calendar, cfg.start - timedelta(days=1))
        self.lifecycle = Lifecycle(cfg, self.rng, axis, self.catalogue, self.calendar,
                                   due_for or legal_due_for(self.catalogue, self.calendar), self.end_ts,
                                   self.stats, tag, communes=self.communes, desk=desk)

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


    def deliveries(self) -> Iterator[SimDelivery]:
        """The events as the pipeline receives them: in arrival order, each with its simulated arrival.

        Without network modelling every event arrives as it occurs, in ``events()`` order.
        """
        return in_arrival_order(self.events(), self.network)


def simulate(cfg: SimulationConfig, due_for: DueFor | None = None) -> Iterator[DossierEvent]:
    """Yield the province's events in occurred_at order, ending at start + days."""
    return Simulation(cfg, due_for=due_for).events()
