"""The processing stage of one accepted dossier, planned in working seconds (see ``sim_lifecycle``).

The plan follows the same rules as ``onestop.sla`` (the due date counts until its close, pauses
are added to it, a second processing-stage supplement counts as overdue), so the simulator knows
which dossiers it made late.
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime, timezone
from random import Random
from typing import Any, Protocol

from onestop.catalogue import Procedure, TimeUnit
from onestop.events import Channel, EventType
from onestop.workcal import WorkCalendar
from producers.sim_arrivals import Arrival
from producers.sim_calendar import WorkAxis
from producers.sim_desk import SPOT_MAX, SPOT_MIN

E = EventType
HOUR = 3600
WORKING_DAY = 8 * HOUR
Item = tuple[int, EventType, "dict[str, Any] | None"]

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


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class PlanSource(Protocol):
    """What a plan needs of the simulation that makes it."""

    cfg: Any
    rng: Random
    axis: WorkAxis
    calendar: WorkCalendar

    def lognormal(self, median: float, sigma: float, cap: float) -> int: ...


class Plan:
    """The processing stage of one accepted dossier, in working seconds since the axis origin."""

    def __init__(self, life: PlanSource, procedure: Procedure, accepted_w: int, due_w: int) -> None:
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
        return (letter, E.EXTENDED, {"due_at": utc(new_due_ts), "reason": REASONS[E.EXTENDED]})

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
