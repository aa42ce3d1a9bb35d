"""The alert router's book: which dossier alerts are active, and what Alertmanager must be told about them.

The worker sends one record per decision to ``dossier.alerts``, keyed by
dossier: a due-soon, overdue or escalation alert, or a clear. A dossier has at
most one active alert, the latest one not cleared. The book folds those
records and turns each active alert into one or more Alertmanager alerts:

- a due-soon alert is one ``DossierDueSoon`` alert for the first escalation
  step (the officer);
- an overdue (or escalation) alert is one ``DossierOverdue`` alert per
  escalation step reached: the officer from the first overdue moment, then the
  commune's leaders, then the province, by working days overdue on the
  domain calendar. Steps add up: the officer keeps being told.

Alertmanager knows an alert by its labels. The book remembers which label sets
Alertmanager has accepted as firing, so that it ends exactly those (and never
sends a "resolved" for an alert nobody was told about, which would trigger a
notification of its own). Everything here is pure: the router does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import msgspec

from onestop.catalogue import Catalogue
from onestop.workcal import WorkCalendar
from sinks.alert_messages import ALERTNAME, DUE_SOON, OVERDUE, Step, annotations, labels
from onestop.wire import Alert

LabelKey = tuple[tuple[str, str], ...]
OUR_ALERTNAMES = (DUE_SOON, OVERDUE)


class Posting(msgspec.Struct, frozen=True):
    """One alert as Alertmanager's API v2 takes it (``POST /api/v2/alerts``)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: datetime
    endsAt: datetime

    @property
    def key(self) -> LabelKey:
        return label_key(self.labels)

    def ends(self, now: datetime) -> bool:
        return self.endsAt <= now


def label_key(found: dict[str, str]) -> LabelKey:
    return tuple(sorted(found.items()))


@dataclass
class AlertBook:
    steps: tuple[Step, ...]
    calendar: WorkCalendar
    catalogue: Catalogue
    province_code: str
    hold: timedelta
    active: dict[str, Alert] = field(default_factory=dict)  # dossier_id → its active alert
    posted: dict[str, dict[LabelKey, Posting]] = field(default_factory=dict)  # accepted as firing
    dirty: set[str] = field(default_factory=set)  # dossiers whose alert changed since the last post

    # --- records ----------------------------------------------------------------------------

    def fold(self, alert: Alert) -> None:
        """Apply one record of ``dossier.alerts``."""
        current = self.active.get(alert.dossier_id)
        if alert.kind == "cleared":
            if current is not None and alert.clears in (None, current.alert_id):
                del self.active[alert.dossier_id]
                self.dirty.add(alert.dossier_id)
            return
        if alert.kind not in ALERTNAME:
            raise ValueError(f"unknown alert kind {alert.kind!r}")
        if current is None or current.alert_id != alert.alert_id:
            self.active[alert.dossier_id] = alert
            self.dirty.add(alert.dossier_id)

    # --- what Alertmanager must be told ------------------------------------------------------

    def working_days_overdue(self, alert: Alert, now: datetime) -> int:
        if alert.due_at is None:
            return 0
        at = max(now, alert.fired_at)  # an event-clock alert is judged no earlier than it was decided
        return self.calendar.working_days_between(self.calendar.local_date(alert.due_at), self.calendar.local_date(at))

    def steps_of(self, alert: Alert, now: datetime) -> tuple[tuple[Step, ...], int]:
        """The steps ``alert`` has reached at ``now`` (as a count) and its working days overdue."""
        if ALERTNAME[alert.kind] == DUE_SOON:
            return self.steps[:1], 0
        days = self.working_days_overdue(alert, now)
        return tuple(s for s in self.steps if s.after_days <= days), days

    def wanted(self, dossier_id: str, now: datetime) -> list[Posting]:
        """The firing alerts Alertmanager should hold for ``dossier_id`` now (none once cleared)."""
        alert = self.active.get(dossier_id)
        if alert is None:
            return []
        reached, days = self.steps_of(alert, now)
        posted = self.posted.get(dossier_id, {})
        out = []
        for step in reached:
            found = labels(alert, step, self.province_code)
            before = posted.get(label_key(found))
            starts = before.startsAt if before else min(alert.fired_at if step.after_days == 0 else now, now)
            out.append(Posting(found, annotations(alert, step, days, self.catalogue), _utc(starts),
                               _utc(now + self.hold)))
        return out

    def _for(self, dossier_ids: list[str], now: datetime) -> list[Posting]:
        out: list[Posting] = []
        for dossier_id in dossier_ids:
            firing = self.wanted(dossier_id, now)
            keep = {p.key for p in firing}
            out += firing
            for key, before in self.posted.get(dossier_id, {}).items():
                if key not in keep:
                    out.append(msgspec.structs.replace(before, endsAt=_utc(now)))
        return out

    def changes(self, now: datetime) -> list[Posting]:
        """Postings for the dossiers whose alert changed: their firing alerts, and ends for what they no longer have."""
        return self._for(sorted(self.dirty), now)

    def refresh(self, now: datetime) -> list[Posting]:
        """Every active alert again, with ``endsAt`` moved ahead, and the escalation steps reached since."""
        return self._for(sorted(set(self.active) | set(self.posted)), now)

    def adopt(self, in_alertmanager: list[Posting], now: datetime) -> list[Posting]:
        """Take over what Alertmanager holds for our dossiers; returns ends for what the book no longer wants.

        After a restart the book is rebuilt from Kafka, but not what was posted: the alerts Alertmanager
        already holds are marked posted (they keep their start and are not new), and those the book does
        not want are ended. A clear read but not yet posted when the router stopped is such an alert:
        Alertmanager is then the only one who remembers it.
        """
        wanted = {p.key for dossier_id in self.active for p in self.wanted(dossier_id, now)}
        ends = []
        for p in in_alertmanager:
            if p.labels.get("alertname") not in OUR_ALERTNAMES or p.ends(now):
                continue
            if p.key in wanted:
                self.posted.setdefault(p.labels.get("dossier_id", ""), {})[p.key] = p
            else:
                ends.append(msgspec.structs.replace(p, endsAt=_utc(now)))
        return ends

    def accepted(self, postings: list[Posting], now: datetime) -> None:
        """Alertmanager took ``postings``: remember what fires, forget what ended."""
        for p in postings:
            dossier_id = p.labels.get("dossier_id", "")
            if p.ends(now):
                held = self.posted.get(dossier_id)
                if held is not None:
                    held.pop(p.key, None)
                    if not held:
                        del self.posted[dossier_id]
            else:
                self.posted.setdefault(dossier_id, {})[p.key] = p
            self.dirty.discard(dossier_id)


def _utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc)
