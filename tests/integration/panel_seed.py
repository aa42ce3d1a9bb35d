"""A chDB store seeded the way the pipeline fills it, and the truth about it computed apart from the panels.

``seed_store`` simulates a few communes, runs every event through the worker's
processor (``streams.processor.Processor``, the code the Faust agent runs,
with a dict as its table and every record on one partition so that the event
clock is one instant), and writes what the worker publishes (counter batches,
alerts, dossier states) and the raw events through the sink's row functions into chDB. Only
Kafka is left out: these tests are about what the panels read.

``Truth`` folds the same events with the domain core and judges each dossier
with the SLA clock at the store's clock, so the panels' expected values never
come from the panels' SQL or from the worker's counters.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import msgspec

from onestop import events as contract
from onestop.catalogue import default_catalogue
from onestop.fold import DossierState, fold
from onestop.sla import classify
from onestop.wire import encode_alert
from onestop.workcal import VN_TZ, default_calendar
from producers.simulator import SimulationConfig, simulate
from sinks.clickhouse import ensure_schema, insert
from onestop.wire import encode_dossier
from sinks.rows import COLUMNS, alert_rows, counter_rows, dossier_rows, event_rows
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import decode_stored
from streams.processor import Processor
from streams.published import dossier_record

CONFIG = SimulationConfig(communes=6, dossiers=1500, seed=3, start=date(2026, 11, 2), days=10)
_json = msgspec.json.Encoder()


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


@dataclass
class Seeded:
    now: datetime  # the store's clock: the end of every panel's time range
    events: list[contract.DossierEvent]
    alerts: list = field(default_factory=list)


def seed_store(client, database: str, cfg: SimulationConfig = CONFIG) -> Seeded:  # type: ignore[no-untyped-def]
    ensure_schema(client, database)
    evs = sorted(simulate(cfg), key=lambda e: e.occurred_at)
    processor = Processor(Evaluator(default_calendar(), default_catalogue()), Clock("event"))
    store, rows, alerts = DictStore(), defaultdict(list), []
    for offset, e in enumerate(evs):
        raw = contract.encode(e)
        for table, r in event_rows(raw, 0, offset).items():
            rows[table] += r
        fx = processor.on_event(0, offset, raw, store)
        alerts += fx.alerts
    for a in alerts:
        for table, r in alert_rows(encode_alert(a), 0, 0).items():
            rows[table] += r
    now = processor.clock.now(0)
    for batch in processor.counters.drain({0: now}):
        for table, r in counter_rows(_json.encode(batch), 0, 0).items():
            rows[table] += r
    for key, value in store.items():  # what the worker publishes to dossier.state, as the sink stores it
        record = None if key.startswith(b"\x00") else dossier_record(decode_stored(value), processor.evaluator)
        if record is not None:
            for table, r in dossier_rows(encode_dossier(record), 0, 0).items():
                rows[table] += r
    for table, r in rows.items():
        insert(client, f"{database}.{table}", r, COLUMNS[table], token=f"seed:{table}")
    return Seeded(now=now, events=evs, alerts=alerts)


class Truth:
    """What every panel should show, from the events alone."""

    def __init__(self, seeded: Seeded) -> None:
        self.now = seeded.now
        self.calendar, self.catalogue = default_calendar(), default_catalogue()
        per: dict[str, list] = defaultdict(list)
        for e in seeded.events:
            per[e.dossier_id].append(e)
        self.states: list[DossierState] = [s for s in (fold(v) for v in per.values()) if s is not None]
        self.today = self.now.astimezone(VN_TZ).date()
        self.alerts = seeded.alerts

    def local(self, at: datetime) -> date:
        return at.astimezone(VN_TZ).date()

    def in_30_days(self, at: datetime | None) -> bool:
        return at is not None and self.today - timedelta(days=30) < self.local(at) <= self.today

    def verdict(self, s: DossierState, at: datetime | None = None):  # type: ignore[no-untyped-def]
        return classify(s, at or self.now, calendar=self.calendar, catalogue=self.catalogue)

    def accepted(self, commune: str | None = None) -> list[DossierState]:
        return [s for s in self.states if s.accepted_at is not None and commune in (None, s.commune_code)]

    def handled(self, commune: str | None = None) -> list[DossierState]:
        return [s for s in self.states if s.accepted_at is not None and commune in (None, s.handling_commune_code)]

    def open(self, commune: str | None = None) -> list[DossierState]:
        return [s for s in self.handled(commune) if s.is_open]

    def sla_counts(self, commune: str | None = None) -> Counter:
        return Counter(self.verdict(s).timeliness.value for s in self.open(commune))

    def received_today(self, commune: str | None = None) -> Counter:
        return Counter(s.channel for s in self.accepted(commune) if self.local(s.accepted_at) == self.today)

    def resolved_30(self, commune: str | None = None) -> Counter:
        return Counter(self.verdict(s, s.finished_at).timeliness.value
                       for s in self.handled(commune) if s.finished_at is not None and self.in_30_days(s.finished_at))

    def ontime_rate(self, commune: str | None = None) -> float | None:
        c = self.resolved_30(commune)
        return (c["before_due"] + c["on_due"]) / sum(c.values()) if c else None

    def online_share(self, commune: str | None = None) -> float | None:
        recent = [s for s in self.accepted(commune) if self.in_30_days(s.accepted_at)]
        return sum(s.channel == 2 for s in recent) / len(recent) if recent else None

    def ontime_766(self, commune: str | None = None) -> float | None:
        c, sla = self.resolved_30(commune), self.sla_counts(commune)
        within = sla["within_due"] + sla["due_soon"]
        denominator = sum(c.values()) + sum(sla.values())
        return (c["before_due"] + c["on_due"] + within) / denominator if denominator else None

    def hourly(self, start: datetime, end: datetime, commune: str | None = None) -> dict[datetime, tuple[int, int]]:
        """(received, resolved) per UTC hour whose bucket start lies in [start, end]."""
        out: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
        for s in self.states:
            for at, unit, i in ((s.accepted_at, s.commune_code, 0), (s.finished_at if s.accepted_at else None,
                                                                    s.handling_commune_code, 1)):
                if at is None or commune not in (None, unit):
                    continue
                hour = at.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
                if start <= hour <= end:
                    out[hour][i] += 1
        return {k: (v[0], v[1]) for k, v in out.items()}

    def state(self, dossier_id: str) -> DossierState:
        return next(s for s in self.states if s.dossier_id == dossier_id)

    def overdue_open(self, commune: str | None = None) -> dict[str, datetime]:
        """Open dossiers overdue now, with the due instant as it stands: every pause that has ended counted,
        and one still running not yet (its dossier's due instant as of when that pause began)."""
        out = {}
        for s in self.open(commune):
            if self.verdict(s).timeliness.value == "overdue":
                running = [p.start for p in s.pauses if p.end is None]
                out[s.dossier_id] = self.verdict(s, running[-1] if running else None).judged_due_at
        return out

    def mean_resolution_days(self, commune: str | None = None) -> dict[str, tuple[float, int]]:
        durations: dict[str, list[float]] = defaultdict(list)
        for s in self.handled(commune):
            if s.finished_at is not None and self.in_30_days(s.finished_at) and \
                    s.accepted_at > self.now - timedelta(days=180):
                durations[s.procedure_code].append((s.finished_at - s.accepted_at).total_seconds() / 86400)
        return {code: (sum(d) / len(d), len(d)) for code, d in durations.items()}

    def open_by_age(self, commune: str) -> dict[str, Counter]:
        bounds = ((1, "0-1d"), (3, "1-3d"), (7, "3-7d"), (15, "7-15d"), (30, "15-30d"))
        out: dict[str, Counter] = defaultdict(Counter)
        for s in self.open(commune):
            age = self.now - s.accepted_at
            label = next((name for days, name in bounds if age < timedelta(days=days)), ">30d")
            out[label][self.verdict(s).timeliness.value] += 1
        return out
