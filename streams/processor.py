"""What the worker does with each record, without Faust.

``Processor`` folds one event into its dossier, re-judges the dossier when the
event can move its clock, moves the dossier's counter contributions, fires the
deadline index up to the partition's clock and decides alerts. It reads and
writes dossiers through a small ``Store`` (the Faust table in production, a
dict in unit tests) and returns what must leave the worker (dead letters and
alerts). Keeping this free of Faust keeps it testable and cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Protocol

import msgspec

from onestop import dlq, events
from onestop.events import EventType
from onestop.fold import DossierState, apply
from onestop.practices import judge_reception
from onestop.servicecal import ServiceCalendar, default_service_calendar
from streams.clock import Clock
from streams.counters import Counters
from streams.deadlines import DeadlineIndex
from streams.evaluate import Evaluator, age_bucket
from streams.model import Alert, StoredDossier, alert_id, decode_stored, encode_stored

log = logging.getLogger(__name__)

# Events after which the SLA verdict can differ; other events keep the stored one.
CLOCK_EVENTS = frozenset({
    EventType.ACCEPTED, EventType.EXTENDED, EventType.DUE_DATE_CORRECTED, EventType.SUPPLEMENT_REQUESTED,
    EventType.SUPPLEMENT_RECEIVED, EventType.FINANCIAL_OBLIGATION_REQUESTED,
    EventType.FINANCIAL_OBLIGATION_FULFILLED,
})
ALERTING = {"due_soon", "overdue"}


class Store(Protocol):
    def get(self, key: bytes) -> bytes | None: ...
    def set(self, key: bytes, value: bytes) -> None: ...


@dataclass
class Effects:
    dead_letters: list[dlq.DeadLetter] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0


class Processor:
    def __init__(self, evaluator: Evaluator, clock: Clock, service: ServiceCalendar | None = None) -> None:
        self.evaluator = evaluator
        self.clock = clock
        self.service = service or default_service_calendar()  # when counters open: same-day, service days
        self.counters = Counters()
        self.index = DeadlineIndex()
        self.waiting_alert: dict[int, set[str]] = {}  # wall clock: alerts held while catching up

    # --- records ------------------------------------------------------------------------

    def on_event(self, partition: int, offset: int, raw: bytes, store: Store) -> Effects:
        fx = Effects()
        try:
            event = events.decode(raw)
        except events.ContractError as exc:
            fx.dead_letters.append(dlq.dead_letter(raw, exc.code, exc.message, _where(partition, offset)))
            return fx
        self.clock.observe(partition, event.occurred_at)
        now = self.clock.now(partition) or event.occurred_at
        key = event.dossier_id.encode()
        before = _load(store.get(key))
        outcome = apply(before.state if before else None, event)
        for r in outcome.rejected:
            fx.dead_letters.append(dlq.dead_letter(events.encode(r.event), r.code, r.message, _where(partition, offset),
                                                   dossier_id=r.event.dossier_id, event_id=r.event.event_id))
        fx.duplicates += outcome.duplicate
        if before is None or outcome.state != before.state:
            fx.applied += len(outcome.applied)
            clock_moved = any(e.event_type in CLOCK_EVENTS for e in outcome.applied)
            after = self._judge(partition, before, outcome.state, now, clock_moved)
            reschedule = clock_moved or before is None or before.state.is_open != after.state.is_open
            self._save(partition, before, after, store, fx, now, reschedule=reschedule)
        self.fire_due(partition, store, fx)
        return fx

    def on_tick(self, partition: int, store: Store) -> Effects:
        fx = Effects()
        self.fire_due(partition, store, fx)
        return fx

    # --- judging ------------------------------------------------------------------------

    def _judge(self, partition: int, before: StoredDossier | None, state: DossierState, now: datetime,
               clock_moved: bool) -> StoredDossier:
        base = before or StoredDossier(partition=partition, state=state)
        field = base.field or (self.evaluator.field_of(state) if state.accepted_at else "")
        stored = msgspec.structs.replace(base, partition=partition, state=state, field=field)
        if stored.reception is None and state.accepted_at is not None:
            stored = msgspec.structs.replace(stored, reception=judge_reception(state, self.service))
        if not state.is_open:
            outcome = stored.outcome or self.evaluator.resolved_outcome(state)
            return msgspec.structs.replace(stored, sla=None, escalated=False, age=None, outcome=outcome)
        if clock_moved or stored.sla is None:
            stored = self._rejudge(stored, now)
        return stored

    def _rejudge(self, stored: StoredDossier, now: datetime) -> StoredDossier:
        verdict = self.evaluator.open_verdict(stored.state, now)
        age, _ = age_bucket(stored.state.accepted_at or now, now)
        return msgspec.structs.replace(stored, sla=verdict.sla, escalated=verdict.escalated, age=age,
                                       judged_due_at=verdict.judged_due_at)

    def _next_check(self, stored: StoredDossier, now: datetime) -> datetime | None:
        if not stored.state.is_open:
            return None
        verdict = self.evaluator.open_verdict(stored.state, now)
        candidates = [self.evaluator.next_sla_check(verdict, now),
                      age_bucket(stored.state.accepted_at or now, now)[1]]
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    def _save(self, partition: int, before: StoredDossier | None, after: StoredDossier, store: Store,
              fx: Effects, now: datetime, *, reschedule: bool = True) -> None:
        after = self._alerts(partition, before, after, fx, now)
        self.counters.move(partition, before, after)
        store.set(after.state.dossier_id.encode(), encode_stored(after))
        if reschedule:
            self.index.schedule(partition, after.state.dossier_id, self._next_check(after, now))

    # --- deadlines and alerts -----------------------------------------------------------

    def fire_due(self, partition: int, store: Store, fx: Effects) -> None:
        now = self.clock.now(partition)
        if now is None:
            return
        for dossier_id in self.index.due(partition, now):
            before = _load(store.get(dossier_id.encode()))
            if before is None or not before.state.is_open:
                continue
            after = self._rejudge(before, now)
            if after != before:
                self._save(partition, before, after, store, fx, now)
            else:
                self.index.schedule(partition, dossier_id, self._next_check(after, now))
        held = self.waiting_alert.get(partition)
        if held and self.clock.live(partition):
            self.waiting_alert[partition] = set()
            for dossier_id in sorted(held):
                stored = _load(store.get(dossier_id.encode()))
                if stored is not None:
                    self._save(partition, stored, self._rejudge(stored, now), store, fx, now)

    def _alerts(self, partition: int, before: StoredDossier | None, after: StoredDossier, fx: Effects,
                now: datetime) -> StoredDossier:
        if after.active_alert and (after.sla not in ALERTING or after.judged_due_at != (before and before.judged_due_at)):
            after = self._emit(after, "cleared", now, fx, clears=after.active_alert)
        if after.sla in ALERTING:
            kind = "escalation" if after.escalated else after.sla
            if kind == "due_soon" and (before is None or before.sla != "within_due"):
                # Same-day procedures are born inside the due-soon window: the panels count them,
                # but nobody is paged until a dossier *enters* the window or goes overdue.
                return after
            if alert_id(after.state.dossier_id, kind, after.judged_due_at) not in after.alerts:
                if self.clock.live(partition):
                    after = self._emit(after, kind, now, fx)
                else:
                    self.waiting_alert.setdefault(partition, set()).add(after.state.dossier_id)
        return after

    def _emit(self, stored: StoredDossier, kind: str, now: datetime, fx: Effects, clears: str | None = None) -> StoredDossier:
        st = stored.state
        aid = alert_id(st.dossier_id, kind, stored.judged_due_at) if clears is None else alert_id(st.dossier_id, f"cleared:{clears}", None)
        if aid in stored.alerts:
            return msgspec.structs.replace(stored, active_alert=None) if clears else stored
        fx.alerts.append(Alert(
            alert_id=aid, kind=kind, dossier_id=st.dossier_id, commune_code=st.handling_commune_code,
            receiving_commune_code=st.commune_code, procedure_code=st.procedure_code, field=stored.field,
            due_at=stored.judged_due_at, original_due_at=st.original_due_at, fired_at=now,
            clock=self.clock.mode, clears=clears,
            reason=_reason(stored, kind),
        ))
        return msgspec.structs.replace(stored, alerts=(*stored.alerts, aid), active_alert=None if clears else aid)

    # --- recovery -----------------------------------------------------------------------

    def rebuild(self, stored: Iterable[StoredDossier], partitions: set[int]) -> None:
        """Recount and re-index ``partitions`` from the state table (after recovery or a rebalance)."""
        items = [s for s in stored if s.partition in partitions]
        self.counters.rebuild(items, partitions)
        self.index.forget(partitions)
        for s in items:
            self.clock.seed(s.partition, s.state.last_event_at)
        for s in items:
            now = self.clock.now(s.partition)
            if now is not None:
                when = self._next_check(s, now)
                if when is not None and self._passed_a_transition(s, now):
                    when = now  # judge it again at the next record, as the lost schedule would have
                self.index.schedule(s.partition, s.state.dossier_id, when)
        log.info("rebuilt %d dossiers for partitions %s; %d scheduled", len(items), sorted(partitions), len(self.index))

    def _passed_a_transition(self, stored: StoredDossier, now: datetime) -> bool:
        """True if the restored clock is past an SLA transition the stored judgement has not seen yet.

        ``next_sla_check`` never schedules less than a minute ahead, so a transition can lie between
        the last judgement and the clock restored on rebuild. Scheduling from the verdict at the
        restored clock would step over it (e.g. straight from within_due to the overdue check, and
        the due-soon alert would never go out).
        """
        verdict = self.evaluator.open_verdict(stored.state, now)
        return not verdict.paused and (verdict.sla, verdict.escalated) != (stored.sla, stored.escalated)

    def forget(self, partitions: set[int]) -> None:
        self.counters.forget(partitions)
        self.index.forget(partitions)
        self.clock.forget(partitions)
        for p in partitions:
            self.waiting_alert.pop(p, None)


def _where(partition: int, offset: int) -> str:
    return f"worker:dossier.events:{partition}@{offset}"


def _load(raw: bytes | None) -> StoredDossier | None:
    return decode_stored(raw) if raw is not None else None


def _reason(stored: StoredDossier, kind: str) -> str:
    due = stored.judged_due_at.isoformat() if stored.judged_due_at else "?"
    return {
        "due_soon": f"due {due}, within the due-soon horizon",
        "overdue": f"due {due} has passed",
        "escalation": f"still overdue several working days after {due}",
        "cleared": f"no longer due soon or overdue (status {stored.state.status})",
    }[kind]
