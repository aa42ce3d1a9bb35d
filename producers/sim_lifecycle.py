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
from bisect import bisect_right, insort
from datetime import date, datetime, timezone
from itertools import accumulate
from math import log
from random import Random
from typing import TYPE_CHECKING, Any, Callable

from onestop.catalogue import Catalogue, Procedure, TimeUnit
from onestop.events import Channel, DossierEvent, EventType
from onestop.workcal import WorkCalendar
from producers.sim_arrivals import Arrival
from producers.sim_calendar import WorkAxis
from producers.sim_desk import SPOT_MAX, SPOT_MIN
from producers.sim_stats import SimulationStats

if TYPE_CHECKING:
    from onestop.communes import Commune
    from producers.sim_config import SimulationConfig
    from producers.sim_desk import Desk

E = EventType
NAMESPACE = uuid.UUID("6f1b7f0e-3c55-4a8e-9d55-0e6c1d1a4b21")
HOUR = 3600
WORKING_DAY = 8 * HOUR

FINANCIAL_FIELDS = frozenset({"Đất đai"})  # land procedures: taxes and fees before the certificate
SPECIALIST = {
    "Hộ tịch": "công chức tư pháp - hộ tịch", "Chứng thực": "công chức tư pháp - hộ tịch",
    "Đất đai": "công chức địa chính - xây dựng", "Bảo trợ xã hội": "công chức văn hóa - xã hội",
    "Người có công": "công chức văn hóa - xã hội", "Hộ kinh doanh": "công chức tài chính - kế toán",
}
PARTNER = {  # the agency of an inter-agency hop, by field
    "Hộ tịch": "Công an xã (xác minh cư trú)", "Chứng thực": "Phòng Tư pháp (xác minh)",
    "Đất đai": "Văn phòng đăng ký đất đai", "Bảo trợ xã hội": "Hội đồng xét duyệt trợ giúp xã hội",
    "Người có công": "Sở Nội vụ", "Hộ kinh doanh": "Cơ quan thuế",
}
APPROVAL = "lãnh đạo UBND xã ký duyệt"
# The shape of the rarer paths (their rates are in SimulationConfig).
WITHDRAWN_WHILE_WAITING = 0.3  # of withdrawals: while a supplement request is open
STOPPED_AFTER_UNANSWERED_SUPPLEMENT = 0.6  # of stops: the citizen never supplemented
EXTENSION_KEPT = 0.85  # of extended dossiers: finished by the new date
REASONS = {
    E.REFUSED_AT_RECEPTION: "Không thuộc thẩm quyền hoặc không đủ điều kiện tiếp nhận (Mẫu 03)",
    E.RECEPTION_SUPPLEMENT_REQUESTED: "Hồ sơ chưa đầy đủ thành phần, đề nghị bổ sung (Mẫu 02)",
    E.SUPPLEMENT_REQUESTED: "Đề nghị bổ sung, hoàn thiện hồ sơ (Mẫu 02)",
    E.FINANCIAL_OBLIGATION_REQUESTED: "Thông báo thực hiện nghĩa vụ tài chính",
    E.WITHDRAWAL_REQUESTED: "Công dân đề nghị rút hồ sơ",
    E.REFUSED: "Hồ sơ không đủ điều kiện giải quyết",
    E.PROCESSING_STOPPED: "Dừng giải quyết hồ sơ (Mẫu 05)",
    E.EXTENDED: "Văn bản xin lỗi và hẹn lại ngày trả kết quả (Mẫu 04)",
}

DueFor = Callable[[str, datetime], datetime]
Item = tuple[int, EventType, "dict[str, Any] | None"]


def uuid5_text(prefix: "hashlib._Hash", name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` from a pre-hashed namespace: the same ids, a third of the cost."""
    h = prefix.copy()
    h.update(name.encode())
    x = h.hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{'89ab'[int(x[16], 16) & 3]}{x[17:20]}-{x[20:32]}"


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


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
        day = self.calendar.local_date(_utc(ts))
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
                seq=seq, occurred_at=_utc(ts), commune_code=commune, procedure_code=code, channel=a.channel,
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
        due = self.due_for(code, _utc(accept_ts))
        items.append((accept_ts, E.ACCEPTED, {"due_at": due, "procedure_version": procedure.version,
                                              "calendar_version": self.calendar.version}))
        if accept_ts < self.end_ts:
            self.stats.accepted += 1
            self.stats.accepted_online += a.channel is Channel.ONLINE
        plan = _Plan(self, procedure, axis.position(accept_ts), axis.position(int(due.timestamp())))
        promise = self.desk is not None and self.desk.promised(a, code, _utc(accept_ts))
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

    def _spot(self, plan: "_Plan", items: list[Item], a: Arrival, within: bool) -> bool:
        """A promised dossier: resolved on the spot with ``no_appointment_same_day_rate``."""
        if self.rng.random() >= self.cfg.no_appointment_same_day_rate or not plan.on_the_spot(items, a):
            return False
        self.stats.on_the_spot += within
        return True

    def lognormal(self, median: float, sigma: float, cap: float) -> int:
        """A log-normal wait in whole seconds, at least a minute and at most ``cap``."""
        return max(60, int(min(cap, self.rng.lognormvariate(log(median), sigma))))


class _Plan:
    """The processing stage of one accepted dossier, in working seconds since the axis origin."""

    def __init__(self, life: Lifecycle, procedure: Procedure, accepted_w: int, due_w: int) -> None:
        self.life, self.procedure, self.rng, self.axis = life, procedure, life.rng, life.axis
        self.accepted_w = accepted_w
        self.due_close_w = self.axis.day_bounds(due_w)[1]  # the due *date* counts: until its close
        self.budget = max(60, self.due_close_w - accepted_w)
        self.same_day = procedure.time_unit is TimeUnit.SAME_DAY
        self.specialist = SPECIALIST.get(procedure.field, "công chức chuyên môn")
        self.counted = 0  # paused working time the SLA clock subtracts
        self.supplements = 0
        self.finish_w = accepted_w
        self.new_due_w: int | None = None  # the extension's date, when a letter is issued
        self.outcome = ""

    def _at(self, w: int) -> int:
        return self.axis.instant(w)

    def overdue(self) -> bool:
        """As ``onestop.sla.classify`` with the default policy will judge the finished dossier."""
        if self.supplements > 1:
            return True
        return self.axis.day_of(self.finish_w) > self.axis.day_of(self.due_close_w + self.counted)

    def cut_short(self, items: list[Item], kind: EventType, *, in_supplement: bool) -> None:
        """Withdrawn, refused or stopped before the due date (so on time)."""
        cfg, rng = self.life.cfg, self.rng
        cut = self.accepted_w + int(self.budget * rng.uniform(0.1, 0.9))
        start = self.accepted_w + min(int((cut - self.accepted_w) * 0.3), rng.randint(60, HOUR))
        items.append((self._at(start), E.STEP_ASSIGNED, {"step": self.specialist}))
        end = cut
        if in_supplement:  # the citizen never supplements: withdrawn or stopped while waiting
            asked = start + (cut - start) // 2
            items.append((self._at(asked), E.SUPPLEMENT_REQUESTED, {"reason": REASONS[E.SUPPLEMENT_REQUESTED]}))
            self.supplements = 1
            end = asked + self.life.lognormal(cfg.supplement_wait_days * WORKING_DAY, 0.6, 20 * WORKING_DAY)
            self.counted = end - asked  # the fold closes the open pause at the terminal event
        elif kind is E.REFUSED:
            items.append((self._at(end), E.STEP_COMPLETED, {"step": self.specialist}))
        items.append((self._at(end), kind, {"reason": REASONS[kind]}))
        self.finish_w, self.outcome = end, kind.value

    def on_the_spot(self, items: list[Item], a: Arrival) -> bool:
        """No appointment slip: the result is ready before the day's close (False if the day is nearly over)."""
        left = self.axis.day_bounds(self.accepted_w)[1] - self.accepted_w
        if left < SPOT_MIN + 60:
            return False
        work = self.rng.randint(SPOT_MIN, min(SPOT_MAX, left - 60))
        items.append((self._at(self.accepted_w + 60), E.STEP_ASSIGNED, {"step": self.specialist}))
        self.finish_w = self.accepted_w + work
        items.append((self._at(self.finish_w), E.RESULT_READY, None))
        self.outcome = "result"
        self._return(items, a)
        return True

    def resolve(self, items: list[Item], a: Arrival, *, late: bool) -> None:
        """The normal path to result_ready and result_returned; ``late`` misses the original date."""
        supplements, financial = self._waits()
        self.supplements = len(supplements)
        self.counted = sum(supplements) + (financial if self.procedure.financial_wait_pauses else 0)
        paused = sum(supplements) + financial
        hop = not self.same_day and self.rng.random() < self.life.cfg.hop_rate
        extension = self._extension() if late else None
        if late:
            judged_close = self.axis.day_bounds(self.due_close_w + self.counted)[1]
            work = judged_close + self._lateness(extension, judged_close) - self.accepted_w - paused
        else:  # anywhere up to the due date, most well before it
            share = self.rng.uniform(0.05, 1.0) if self.same_day else self.rng.triangular(0.05, 1.0, 0.35)
            work = int(share * (self.budget - (paused - self.counted)))
        self._steps(items, max(60, work), supplements, financial, hop)
        self.outcome = "result"
        self._return(items, a)
        if extension is not None:
            insort(items, extension, key=lambda item: item[0])

    def _waits(self) -> tuple[list[int], int]:
        """Supplement waits (rarely two) and the land financial wait (0: none), in working seconds."""
        cfg, rng, life = self.life.cfg, self.rng, self.life
        supplements: list[int] = []
        if rng.random() < cfg.supplement_rate:
            supplements.append(life.lognormal(cfg.supplement_wait_days * WORKING_DAY, 0.8, 20 * WORKING_DAY))
            if rng.random() < cfg.second_supplement_rate:
                supplements.append(life.lognormal(cfg.supplement_wait_days * WORKING_DAY, 0.8, 20 * WORKING_DAY))
        financial = 0
        if self.procedure.field in FINANCIAL_FIELDS and rng.random() < cfg.financial_obligation_rate:
            financial = life.lognormal(cfg.financial_wait_days * WORKING_DAY, 0.7, 30 * WORKING_DAY)
        return supplements, financial

    def _extension(self) -> Item | None:
        """Form 04: an apology letter with a new date, issued at least one working day before the due date."""
        rng, cfg, axis = self.rng, self.life.cfg, self.axis
        if rng.random() >= cfg.extension_rate:
            return None
        due_open_w = axis.day_bounds(self.due_close_w)[0]  # instant() of it: the close of the day before
        earliest = max(self.accepted_w + 60, due_open_w - 2 * WORKING_DAY)
        if earliest > due_open_w:
            return None  # accepted too close to the due date for a letter one working day ahead
        letter = axis.instant(earliest + int((due_open_w - earliest) * rng.random()))
        calendar = self.life.calendar
        days = rng.randint(2, max(2, self.procedure.legal_time // 3 if not self.same_day else 2))
        new_due = calendar.closes_at(calendar.add_working_days(axis.day_of(self.due_close_w), days))
        new_due_ts = int(new_due.timestamp())
        self.new_due_w = axis.position(new_due_ts)
        return (letter, E.EXTENDED, {"due_at": _utc(new_due_ts), "reason": REASONS[E.EXTENDED]})

    def _lateness(self, extension: Item | None, judged_close: int) -> int:
        rng = self.rng
        if extension is not None and rng.random() < EXTENSION_KEPT:
            return rng.randint(300, max(300, (self.new_due_w or 0) - judged_close))
        return 300 + int(rng.expovariate(1 / (1.5 * WORKING_DAY)))

    def _steps(self, items: list[Item], work: int, supplements: list[int], financial: int, hop: bool) -> None:
        """Specialist (with any supplement requests), partner agency, financial wait, signature, result."""
        rng, at = self.rng, self._at
        w = self.accepted_w + int(work * rng.uniform(0.0, 0.08))
        left = self.accepted_w + work - w  # active work still to do, spread over the steps
        shares = [0.55] + ([0.3] if hop else []) + ([] if self.same_day else [0.15])
        total = sum(shares)
        spans = [int(left * s / total) for s in shares]
        spans[-1] = left - sum(spans[:-1])
        items.append((at(w), E.STEP_ASSIGNED, {"step": self.specialist}))
        done = 0
        for wait in supplements:  # supplement requests come from the specialist's review
            step = int((spans[0] - done) * rng.uniform(0.2, 0.7))
            w += step
            done += step
            items.append((at(w), E.SUPPLEMENT_REQUESTED, {"reason": REASONS[E.SUPPLEMENT_REQUESTED]}))
            w += wait
            items.append((at(w), E.SUPPLEMENT_RECEIVED, None))
        w += spans[0] - done
        items.append((at(w), E.STEP_COMPLETED, {"step": self.specialist}))
        rest = spans[1:]
        if hop:
            partner = PARTNER.get(self.procedure.field, "cơ quan phối hợp")
            items.append((at(w), E.STEP_ASSIGNED, {"step": partner}))
            w += rest.pop(0)
            items.append((at(w), E.STEP_COMPLETED, {"step": partner}))
        if financial:
            items.append((at(w), E.FINANCIAL_OBLIGATION_REQUESTED,
                          {"reason": REASONS[E.FINANCIAL_OBLIGATION_REQUESTED]}))
            w += financial
            items.append((at(w), E.FINANCIAL_OBLIGATION_FULFILLED, None))
        if rest:
            items.append((at(w), E.STEP_ASSIGNED, {"step": APPROVAL}))
            w += rest[0]
            items.append((at(w), E.STEP_COMPLETED, {"step": APPROVAL}))
        items.append((at(w), E.RESULT_READY, None))
        self.finish_w = w

    def _return(self, items: list[Item], a: Arrival) -> None:
        """Pickup lag: e-results within minutes, the post within a day or two, desks after hours to days."""
        cfg, rng, life = self.life.cfg, self.rng, self.life
        electronic = a.channel is Channel.ONLINE and rng.random() < cfg.electronic_result_share
        if electronic:
            lag = rng.randint(60, 1800)
        elif a.channel is Channel.POSTAL:
            lag = life.lognormal(WORKING_DAY, 0.5, 5 * WORKING_DAY)
        else:
            median = cfg.pickup_median_hours_same_day if self.same_day else cfg.pickup_median_hours
            lag = life.lognormal(median * HOUR, 1.0, 30 * WORKING_DAY)
        returned = self._at(self.finish_w + lag)
        items.append((returned, E.RESULT_RETURNED, None))
        if life.desk is not None and (rating := life.desk.rating(a, returned, electronic, self.overdue())):
            items.append(rating)
