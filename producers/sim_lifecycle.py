"""One dossier's life, from the desk to the citizen collecting the result.

Reception (no clock yet): an online or postal dossier is ``submitted`` and the
desk accepts it later in office hours; the desk may refuse it (form 03), ask
for a supplement first (form 02: the citizen comes back, or never does), or
the citizen withdraws it. Acceptance issues the receipt with the legal due date.

Processing (the clock runs): a specialist of the commune takes it, an
inter-agency hop may follow, land dossiers wait for the citizen's financial
obligation, the commune leader signs, the result is ready, the citizen
collects it. Supplement requests pause the clock. Some dossiers are
withdrawn, refused or stopped instead, and ``late_rate`` of them miss the
date; some of those get an apology letter with a new date (form 04).

Every instant after acceptance sits on the ``WorkAxis`` (office hours only),
and the plan is made in working seconds against the same rules as
``onestop.sla`` (date boundary, pauses added to the due date, a second
processing-stage supplement counts as overdue), so the simulator knows which
dossiers it made late.
"""

from __future__ import annotations

import hashlib
import uuid
from bisect import bisect_right
from datetime import date, datetime
from itertools import accumulate
from math import log
from random import Random
from typing import TYPE_CHECKING, Any, Callable

from onestop.catalogue import Catalogue, Procedure
from onestop.events import Channel, DossierEvent, EventType
from onestop.workcal import WorkCalendar
from producers.sim_arrivals import Arrival
from producers.sim_calendar import WorkAxis
from producers.sim_plan import HOUR, REASONS, WORKING_DAY, Item, Plan, utc
from producers.sim_stats import SimulationStats

if TYPE_CHECKING:
    from onestop.communes import Commune
    from producers.sim_config import SimulationConfig
    from producers.sim_desk import Desk

E = EventType
NAMESPACE = uuid.UUID("6f1b7f0e-3c55-4a8e-9d55-0e6c1d1a4b21")

WITHDRAWN_WHILE_WAITING = 0.3  # of withdrawals: while a supplement request is open
STOPPED_AFTER_UNANSWERED_SUPPLEMENT = 0.6  # of stops: the citizen never supplemented

DueFor = Callable[[str, datetime], datetime]


def uuid5_text(prefix: "hashlib._Hash", name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` from a pre-hashed namespace: the same ids, a third of the cost."""
    h = prefix.copy()
    h.update(name.encode())
    x = h.hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{'89ab'[int(x[16], 16) & 3]}{x[17:20]}-{x[20:32]}"


class Lifecycle:
    """Builds dossiers' events; all randomness from ``rng``, all time from ``axis``."""

    def __init__(self, cfg: "SimulationConfig", rng: Random, axis: WorkAxis, catalogue: Catalogue, calendar: WorkCalendar,
                 due_for: DueFor, end_ts: int, stats: SimulationStats, id_tag: str = "",
                 communes: "tuple[Commune, ...]" = (), desk: "Desk | None" = None) -> None:
        self.cfg, self.rng, self.axis, self.catalogue, self.calendar = cfg, rng, axis, catalogue, calendar
        self.desk = desk  # practices and ratings; None keeps a default run exactly as it was
        self.due_for, self.end_ts, self.stats, self.id_tag = due_for, end_ts, stats, id_tag
        self.communes = tuple(communes)
        self._codes = sorted(cfg.procedure_mix)  # sorted: the mix's dict order must not matter
        self._mix_cum = list(accumulate(float(cfg.procedure_mix[c]) for c in self._codes))
        self._ns = hashlib.sha1(NAMESPACE.bytes)
        self._procedures: dict[tuple[str, date], Procedure] = {}

    # --- one dossier ------------------------------------------------------------------

    def build(self, a: Arrival) -> list[tuple[int, DossierEvent]]:
        """The dossier's events inside the period, each with its instant in POSIX seconds."""
        rng = self.rng
        i = min(bisect_right(self._mix_cum, rng.random() * self._mix_cum[-1]), len(self._codes) - 1)
        code = self._codes[i]
        if self.desk is not None:
            code = self.desk.procedure(a, rng, code)
            if a.service != "regular":
                self.stats.service_days[a.service] = self.stats.service_days.get(a.service, 0) + 1
        items: list[Item] = []
        accept_ts = self._reception(items, a)
        handling = None
        if accept_ts is None:
            outcome = items[-1][1].value
        else:
            handling = self._handling_commune(a, accept_ts)
            outcome = self._processing(items, a, code, accept_ts)
        self.stats.count(a, outcome)
        dossier_id = f"H{a.commune.province_code}.{a.commune.code}-{a.day:%y%m%d}{self.id_tag}-{a.number:05d}"
        if outcome.startswith("overdue"):
            self.stats.overdue_ids.append(dossier_id)
        return self._events(items, dossier_id, a, code, handling)

    def _handling_commune(self, a: Arrival, accept_ts: int) -> str | None:
        """Another commune of the province that handles the dossier, for ``inter_commune_share`` of them.

        The citizen filed at a desk outside the competent commune: the receipt (and every later
        event) names the handling commune. No draw when the share is 0 or only one commune is
        simulated, so such runs are the same as before the share existed.
        """
        share = self.cfg.inter_commune_share
        if not share or len(self.communes) < 2 or self.rng.random() >= share:
            return None
        others = [c for c in self.communes if c.code != a.commune.code]
        if accept_ts < self.end_ts:
            self.stats.handled_elsewhere += 1
        return others[int(self.rng.random() * len(others))].code

    def _procedure(self, code: str, ts: int) -> Procedure:
        """The version in force on the local day of ``ts`` (cached: one lookup per code and day)."""
        day = self.calendar.local_date(utc(ts))
        found = self._procedures.get((code, day))
        if found is None:
            found = self._procedures[(code, day)] = self.catalogue.get(code, day)
        return found

    def _events(self, items: list[Item], dossier_id: str, a: Arrival, code: str,
                handling: str | None = None) -> list[tuple[int, DossierEvent]]:
        out = []
        seed, ns, commune = self.cfg.seed, self._ns, a.commune.code
        named = None  # the handling commune, on the receipt and every event after it
        tags = self.desk.tags(a, code) if self.desk is not None else {}
        for seq, (ts, kind, extra) in enumerate(items, 1):
            if ts >= self.end_ts:
                break
            if kind is E.ACCEPTED:
                named = handling
            if tags and (seq == 1 or kind is E.ACCEPTED):
                extra = {**(extra or {}), **tags}
            out.append((ts, DossierEvent(
                event_id=uuid5_text(ns, f"{seed}:{dossier_id}:{seq}"), event_type=kind, dossier_id=dossier_id,
                seq=seq, occurred_at=utc(ts), commune_code=commune, procedure_code=code, channel=a.channel,
                handling_commune_code=named, source="simulator", **(extra or {}))))
        return out

    # --- reception: no clock yet ------------------------------------------------------

    def _reception(self, items: list[Item], a: Arrival) -> int | None:
        """Append the reception events; return when the desk accepts, or None if it never does."""
        cfg, rng, axis = self.cfg, self.rng, self.axis
        remote = a.channel is not Channel.IN_PERSON
        desk = a.ts
        if remote:
            items.append((a.ts, E.SUBMITTED, None))
            desk = axis.add(a.ts, self.lognormal(cfg.desk_pickup_hours * HOUR, 0.9, 2 * WORKING_DAY))
        u = rng.random()
        if u < cfg.refusal_at_reception_rate:
            items.append((desk, E.REFUSED_AT_RECEPTION, {"reason": REASONS[E.REFUSED_AT_RECEPTION]}))
            return None
        if remote and u < cfg.refusal_at_reception_rate + cfg.withdrawal_before_acceptance_rate:
            items.append((a.ts + int((desk - a.ts) * rng.random()), E.WITHDRAWAL_REQUESTED,
                          {"reason": REASONS[E.WITHDRAWAL_REQUESTED]}))
            return None
        if rng.random() < cfg.reception_supplement_rate:
            items.append((desk, E.RECEPTION_SUPPLEMENT_REQUESTED,
                          {"reason": REASONS[E.RECEPTION_SUPPLEMENT_REQUESTED]}))
            if rng.random() < cfg.reception_abandon_share:
                return None  # the citizen never comes back: the dossier stays "Mới đăng ký"
            back = axis.add(desk, self.lognormal(WORKING_DAY, 0.8, 10 * WORKING_DAY))
            desk = back
            if remote:
                items.append((back, E.SUBMITTED, None))
                desk = axis.add(back, self.lognormal(cfg.desk_pickup_hours * HOUR, 0.9, 2 * WORKING_DAY))
        return desk

    # --- processing: the clock runs ---------------------------------------------------

    def _processing(self, items: list[Item], a: Arrival, code: str, accept_ts: int) -> str:
        cfg, rng, axis = self.cfg, self.rng, self.axis
        procedure = self._procedure(code, accept_ts)
        due = self.due_for(code, utc(accept_ts))
        items.append((accept_ts, E.ACCEPTED, {"due_at": due, "procedure_version": procedure.version,
                                              "calendar_version": self.calendar.version}))
        if accept_ts < self.end_ts:
            self.stats.accepted += 1
            self.stats.accepted_online += a.channel is Channel.ONLINE
        plan = Plan(self, procedure, axis.position(accept_ts), axis.position(int(due.timestamp())))
        promise = self.desk is not None and self.desk.promised(a, code, utc(accept_ts))
        self.stats.promised += promise and accept_ts < self.end_ts
        r = rng.random()
        if r < cfg.withdrawal_rate:
            plan.cut_short(items, E.WITHDRAWAL_REQUESTED, in_supplement=rng.random() < WITHDRAWN_WHILE_WAITING)
        elif r < cfg.withdrawal_rate + cfg.refusal_rate:
            plan.cut_short(items, E.REFUSED, in_supplement=False)
        elif r < cfg.withdrawal_rate + cfg.refusal_rate + cfg.stop_rate:
            plan.cut_short(items, E.PROCESSING_STOPPED, in_supplement=rng.random() < STOPPED_AFTER_UNANSWERED_SUPPLEMENT)
        elif not (promise and self._spot(plan, items, a, accept_ts < self.end_ts)):
            plan.resolve(items, a, late=rng.random() < cfg.late_rate)
        overdue = plan.overdue()
        if overdue and accept_ts < self.end_ts:
            self.stats.planned_overdue += 1
        return f"{'overdue ' if overdue else ''}{plan.outcome}"

    def _spot(self, plan: "Plan", items: list[Item], a: Arrival, within: bool) -> bool:
        """A promised dossier: resolved on the spot with ``no_appointment_same_day_rate``."""
        if self.rng.random() >= self.cfg.no_appointment_same_day_rate or not plan.on_the_spot(items, a):
            return False
        self.stats.on_the_spot += within
        return True

    def lognormal(self, median: float, sigma: float, cap: float) -> int:
        """A log-normal wait in whole seconds, at least a minute and at most ``cap``."""
        return max(60, int(min(cap, self.rng.lognormvariate(log(median), sigma))))
