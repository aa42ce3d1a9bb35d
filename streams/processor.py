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
from datetime import datetime, timedelta
from typing import Iterable

import msgspec

from onestop import dlq, events
from onestop.admission import AdmissionRules, admit, receipt_time
from onestop.events import EventType
from onestop.fold import DossierState, Outcome, Rejection, apply, skip_gap
from onestop.practices import judge_reception
from onestop.servicecal import ServiceCalendar, default_service_calendar
from streams.clock import Clock
from streams.counters import Counters
from streams.deadlines import DeadlineIndex
from streams.evaluate import Evaluator, age_bucket
from streams.alert_facts import ALERTING, alert_reason, owes_alert, with_held
from streams.model import (MAX_STORED_BYTES, Alert, StoredDossier, alert_id, decode_stored, encode_stored,
                           encoded_or_problem)
from streams.scope import RecordScope, Store

log = logging.getLogger(__name__)

# Events after which the SLA verdict can differ; other events keep the stored one.
CLOCK_EVENTS = frozenset({
    EventType.ACCEPTED, EventType.EXTENDED, EventType.DUE_DATE_CORRECTED, EventType.SUPPLEMENT_REQUESTED,
    EventType.SUPPLEMENT_RECEIVED, EventType.FINANCIAL_OBLIGATION_REQUESTED,
    EventType.FINANCIAL_OBLIGATION_FULFILLED,
})


@dataclass
class Effects:
    dead_letters: list[dlq.DeadLetter] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0


_UNTOUCHED = object()  # the record did not move the partition's clock


class Processor:
    def __init__(self, evaluator: Evaluator, clock: Clock, service: ServiceCalendar | None = None,
                 admission: AdmissionRules | None = None, *, max_state_bytes: int = MAX_STORED_BYTES,
                 seq_gap_timeout: timedelta = timedelta(hours=1), counters: Counters | None = None) -> None:
        self.evaluator = evaluator
        self.clock = clock
        self.service = service or default_service_calendar()  # when counters open: same-day, service days
        # Records already in Kafka are judged again: a producer may predate or skip the entrance checks.
        self.admission = admission or AdmissionRules(evaluator.catalogue)
        self.max_state_bytes = max_state_bytes
        self.counters = counters if counters is not None else Counters()
        self.index = DeadlineIndex()
        self.seq_gap_timeout = seq_gap_timeout
        self.allowed = evaluator.policy.transitions
        # Derived from the stored dossiers (rebuilt on assignment, kept up to date at each commit):
        self.owed: dict[int, set[str]] = {}  # alerts decided while the partition caught up, not yet sent
        self.gaps: dict[int, set[str]] = {}  # dossiers whose later events wait for a missing seq

    # --- records ------------------------------------------------------------------------

    def on_event(self, partition: int, offset: int, raw: bytes, store: Store, *,
                 received_at: datetime | None = None, admitted: events.DossierEvent | None = None) -> Effects:
        """Handle one input record. Everything it does lands in ``store`` and the in-memory indexes
        when it is done, or nothing does if it raises. ``received_at``: the record's Kafka timestamp
        (admission judges occurred_at against it). ``admitted``: the record's event, already decoded
        and admitted by the caller with this processor's rules (``admission``), as a bulk reader that
        also stores the event does; both steps are then skipped."""
        fx = Effects()
        event = admitted if admitted is not None else self._admitted(partition, offset, raw, received_at, fx)
        if event is None:
            return fx
        scope = RecordScope(store, partition)
        seen = self.clock.seen(partition)
        try:
            self.clock.observe(partition, event.occurred_at)
            self._fold(partition, offset, raw, event, scope, fx)
            self.fire_due(partition, scope, fx)
        except BaseException:
            self._abandon(scope, seen)
            raise
        self._commit(scope)
        return fx

    def _admitted(self, partition: int, offset: int, raw: bytes, received_at: datetime | None,
                  fx: Effects) -> events.DossierEvent | None:
        """The record's event if it meets the contract and admission; else None, with its dead letter in ``fx``."""
        try:
            event = events.decode(raw)
        except events.ContractError as exc:
            fx.dead_letters.append(dlq.dead_letter(raw, exc.code, exc.message, _where(partition, offset)))
            return None
        refusal = admit(event, self.admission, received_at=receipt_time(received_at, self.clock.wall_now()),
                        decoded=True)
        if refusal is not None:
            fx.dead_letters.append(dlq.dead_letter(raw, refusal.code, refusal.message, _where(partition, offset),
                                                   dossier_id=event.dossier_id, event_id=event.event_id))
            return None
        return event

    def on_tick(self, partition: int, store: Store) -> Effects:
        fx = Effects()
        scope = RecordScope(store, partition)
        try:
            self.fire_due(partition, scope, fx)
        except BaseException:
            self._abandon(scope, _UNTOUCHED)
            raise
        self._commit(scope)
        return fx

    def _fold(self, partition: int, offset: int, raw: bytes, event: events.DossierEvent, scope: RecordScope,
              fx: Effects) -> None:
        now = self.clock.now(partition) or event.occurred_at
        before = _load(scope.get(event.dossier_id.encode()))
        outcome = apply(before.state if before else None, event, self.allowed)
        mark = len(fx.dead_letters)
        if outcome.rejected:
            self._rejected(outcome.rejected, _where(partition, offset), fx)
        fx.duplicates += outcome.duplicate
        if before is None or outcome.state != before.state:
            stored = self._settle(partition, before, outcome, now, scope, fx,
                                  record=(raw, event, _where(partition, offset)))
            if not stored:  # nothing of this fold happened, so neither did its rejections: only the event is refused
                del fx.dead_letters[mark:-1]

    def _settle(self, partition: int, before: StoredDossier | None, outcome: Outcome, now: datetime,
                scope: RecordScope, fx: Effects, *, record: tuple[bytes, events.DossierEvent, str]) -> bool:
        """Judge a dossier's new state, note whether it waits for a missing seq, and save it.

        A state the table could not hold is not saved: the record goes to the DLQ and the dossier
        stays as it was, so its next valid event still applies."""
        clock_moved = any(e.event_type in CLOCK_EVENTS for e in outcome.applied)
        after = _track_gap(before, self._judge(partition, before, outcome.state, now, clock_moved), now)
        encoded, unstorable = encoded_or_problem(after, self.max_state_bytes)
        if unstorable is not None:
            raw, event, where = record
            fx.dead_letters.append(dlq.dead_letter(raw, *unstorable, where, dossier_id=event.dossier_id,
                                                   event_id=event.event_id))
            return False
        fx.applied += len(outcome.applied)
        reschedule = (clock_moved or before is None or before.state.is_open != after.state.is_open
                      or before.gap_since != after.gap_since)
        self._save(partition, before, after, scope, fx, now, reschedule=reschedule, encoded=encoded)
        return True

    def _rejected(self, rejected: Iterable[Rejection], where: str, fx: Effects) -> None:
        for r in rejected:
            fx.dead_letters.append(dlq.dead_letter(events.encode(r.event), r.code, r.message, where,
                                                   dossier_id=r.event.dossier_id, event_id=r.event.event_id))

    def _commit(self, scope: RecordScope) -> None:
        partition = scope.partition
        for key, value in scope.writes.items():
            scope.store.set(key, value)
        for before, after in scope.moves:
            self.counters.move(partition, before, after)
        for stored in scope.saved.values():
            self._track(partition, stored)

    def _abandon(self, scope: RecordScope, seen: object) -> None:
        for dossier_id, when in reversed(scope.undo):
            self.index.restore(scope.partition, dossier_id, when)
        if seen is not _UNTOUCHED:
            self.clock.rewind(scope.partition, seen)  # type: ignore[arg-type]

    def _track(self, partition: int, stored: StoredDossier) -> None:
        dossier_id = stored.state.dossier_id
        owed, gaps = self.owed.setdefault(partition, set()), self.gaps.setdefault(partition, set())
        (owed.add if owes_alert(stored) else owed.discard)(dossier_id)
        (gaps.add if stored.state.pending else gaps.discard)(dossier_id)

    def _schedule(self, scope: RecordScope, dossier_id: str, when: datetime | None) -> None:
        scope.undo.append((dossier_id, self.index.when(scope.partition, dossier_id)))
        self.index.schedule(scope.partition, dossier_id, when)

    def waiting_for_seq(self) -> int:
        """Dossiers (of the assigned partitions) whose later events wait for an earlier seq."""
        return sum(len(g) for g in self.gaps.values())

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
        candidates = [] if stored.gap_since is None else [stored.gap_since + self.seq_gap_timeout]
        if stored.state.is_open:
            verdict = self.evaluator.open_verdict(stored.state, now)
            candidates += [self.evaluator.next_sla_check(verdict, now),
                           age_bucket(stored.state.accepted_at or now, now)[1]]
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    def _save(self, partition: int, before: StoredDossier | None, after: StoredDossier, scope: RecordScope,
              fx: Effects, now: datetime, *, reschedule: bool = True, encoded: bytes | None = None) -> None:
        """``encoded``: ``after`` already encoded (used unless deciding its alerts changed it)."""
        judged = after
        after = self._alerts(partition, before, after, fx, now)
        scope.save(before, after, encoded if encoded is not None and after is judged else encode_stored(after))
        if reschedule:
            self._schedule(scope, after.state.dossier_id, self._next_check(after, now))

    # --- deadlines, gaps and alerts -----------------------------------------------------

    def fire_due(self, partition: int, scope: RecordScope, fx: Effects) -> None:
        now = self.clock.now(partition)
        if now is None:
            return
        for at, dossier_id in self.index.pop_due(partition, now):
            scope.undo.append((dossier_id, at))
            before = _load(scope.get(dossier_id.encode()))
            if before is None:
                continue
            if before.gap_since is not None and now >= before.gap_since + self.seq_gap_timeout:
                self._give_up_gap(partition, before, now, scope, fx)
            elif before.state.is_open:
                after = self._rejudge(before, now)
                if after != before:
                    self._save(partition, before, after, scope, fx, now)
                else:
                    self._schedule(scope, dossier_id, self._next_check(after, now))
            elif before.gap_since is not None:
                self._schedule(scope, dossier_id, self._next_check(before, now))
        self._release(partition, scope, fx, now)

    def _give_up_gap(self, partition: int, before: StoredDossier, now: datetime, scope: RecordScope,
                     fx: Effects) -> None:
        """The missing seqs did not arrive within ``seq_gap_timeout`` of the partition's clock: skip them,
        apply what waited, and say so in a dead letter (docs/dlq.md, ``seq_gap_timeout``)."""
        state = before.state
        first = state.pending[0]
        outcome = skip_gap(state, self.allowed)
        done = [e.seq for e in outcome.applied] + [r.event.seq for r in outcome.rejected]
        message = (f"dossier {state.dossier_id} waited {self.seq_gap_timeout} (partition clock, since "
                   f"{before.gap_since.isoformat() if before.gap_since else '?'}) for seq "
                   f"{_span(outcome.skipped)}, which never arrived; gave up on it and applied seq {_span(done)}")
        fx.dead_letters.append(dlq.dead_letter(events.encode(first), "seq_gap_timeout", message,
                                               f"worker:dossier.events:{partition}@gap",
                                               dossier_id=state.dossier_id, event_id=first.event_id))
        self._rejected(outcome.rejected, f"worker:dossier.events:{partition}@gap", fx)
        self._settle(partition, before, outcome, now, scope, fx,
                     record=(events.encode(first), first, f"worker:dossier.events:{partition}@gap"))

    def _release(self, partition: int, scope: RecordScope, fx: Effects, now: datetime) -> None:
        """Once the partition has caught up, send what was held while it caught up (if still true)."""
        owed = self.owed.get(partition)
        if not owed or not self.clock.live(partition):
            return
        for dossier_id in sorted(owed):
            stored = _load(scope.get(dossier_id.encode()))
            if stored is not None and owes_alert(stored):
                self._save(partition, stored, self._rejudge(stored, now), scope, fx, now)

    def _alerts(self, partition: int, before: StoredDossier | None, after: StoredDossier, fx: Effects,
                now: datetime) -> StoredDossier:
        if after.active_alert and (after.sla not in ALERTING or after.judged_due_at != (before and before.judged_due_at)):
            after = self._emit(after, "cleared", now, fx, clears=after.active_alert)
        if after.sla not in ALERTING:
            return with_held(after, False)
        kind = "escalation" if after.escalated else after.sla
        if kind == "due_soon" and not after.held and (before is None or before.sla != "within_due"):
            # Same-day procedures are born inside the due-soon window: the panels count them,
            # but nobody is paged until a dossier *enters* the window or goes overdue.
            return after
        if alert_id(after.state.dossier_id, kind, after.judged_due_at) in after.alerts:
            return with_held(after, False)
        if not self.clock.live(partition):
            # Catching up: the alert is owed, and the stored dossier says so, so a crash cannot lose it.
            return with_held(after, True)
        return with_held(self._emit(after, kind, now, fx), False)

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
            reason=alert_reason(stored, kind),
        ))
        return msgspec.structs.replace(stored, alerts=(*stored.alerts, aid), active_alert=None if clears else aid)

    # --- recovery -----------------------------------------------------------------------

    def rebuild(self, stored: Iterable[StoredDossier], partitions: set[int]) -> None:
        """Recount and re-index ``partitions`` from the state table (after recovery or a rebalance).

        Alerts owed by the stored dossiers (decided while a partition caught up, or overdue with no
        alert recorded as sent) are held again; they go out once the partition is live.
        """
        items = [s for s in stored if s.partition in partitions]
        self.counters.rebuild(items, partitions)
        self.index.forget(partitions)
        for p in partitions:
            self.owed[p], self.gaps[p] = set(), set()
        self.clock.assume_behind(partitions)
        for s in items:
            self.clock.seed(s.partition, s.state.last_event_at)
        for s in items:
            self._track(s.partition, s)
            now = self.clock.now(s.partition)
            if now is not None:
                when = self._next_check(s, now)
                if when is not None and s.state.is_open and self._passed_a_transition(s, now):
                    when = now  # judge it again at the next record, as the lost schedule would have
                self.index.schedule(s.partition, s.state.dossier_id, when)
        log.info("rebuilt %d dossiers for partitions %s; %d scheduled, %d alerts owed, %d waiting for a seq",
                 len(items), sorted(partitions), len(self.index), sum(len(self.owed[p]) for p in partitions),
                 sum(len(self.gaps[p]) for p in partitions))

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
            self.owed.pop(p, None)
            self.gaps.pop(p, None)


def _where(partition: int, offset: int) -> str:
    return f"worker:dossier.events:{partition}@{offset}"


def _load(raw: bytes | None) -> StoredDossier | None:
    return decode_stored(raw) if raw is not None else None


def _track_gap(before: StoredDossier | None, after: StoredDossier, now: datetime) -> StoredDossier:
    """Since when the dossier has waited for a missing seq, on the partition's clock (None: it does not)."""
    state = after.state
    if not state.pending:
        since = None
    elif before is not None and before.gap_since is not None and before.state.last_seq == state.last_seq:
        since = before.gap_since  # the same gap still open
    else:
        since = now
    return after if after.gap_since == since else msgspec.structs.replace(after, gap_since=since)


def _span(seqs: Iterable[int]) -> str:
    seqs = sorted(seqs)
    if not seqs:
        return "none"
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}–{seqs[-1]}"
