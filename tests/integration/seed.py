"""Seeded stores for the history tests: simulated events written with the sink's own row functions.

``seed_events`` writes raw events exactly as the sink does (``sinks.rows``);
``seed_pipeline`` also runs the worker's processor (``streams.processor``,
without Faust or Kafka) over the same events and writes its counters and
alerts through the sink's row functions, so every table and view has data.
The client is closed afterwards: the store is free for other processes.
"""

from __future__ import annotations

import zlib
from datetime import timedelta
from typing import Iterable

import msgspec

from onestop import dlq, events
from onestop.catalogue import default_catalogue
from onestop.events import DossierEvent
from onestop.settings import Settings
from onestop.workcal import default_calendar
from sinks import schema
from sinks.clickhouse import connect, ensure_schema, insert
from sinks.rows import COLUMNS, Rows, alert_rows, counter_rows, dead_letter_rows, event_rows
from streams.clock import Clock
from streams.evaluate import Evaluator
from streams.model import encode_alert
from streams.processor import Processor

CHUNK = 50_000


class DictStore(dict):
    def set(self, key: bytes, value: bytes) -> None:
        self[key] = value


def _write(client, db: str, tables: Rows, token: str) -> None:  # type: ignore[no-untyped-def]
    for table, rows in tables.items():
        for i in range(0, len(rows), CHUNK):
            insert(client, f"{db}.{table}", rows[i:i + CHUNK], COLUMNS[table], token=f"{token}:{table}:{i}")


def event_table(evs: Iterable[DossierEvent], partitions: int = 12) -> Rows:
    rows: list = []
    for offset, e in enumerate(evs):
        rows += event_rows(events.encode(e), zlib.crc32(e.dossier_id.encode()) % partitions, offset)[schema.EVENTS]
    return {schema.EVENTS: rows}


def seed_events(settings: Settings, evs: list[DossierEvent], token: str = "seed") -> None:
    client = connect(settings)
    try:
        ensure_schema(client, settings.clickhouse_database)
        _write(client, settings.clickhouse_database, event_table(evs), f"{token}:events")
    finally:
        client.close()


JUNK = (b"{not json", b'{"event_id": "x"}')  # two records a one-stop system got wrong: dead letters


def processed(evs: list[DossierEvent]) -> Rows:
    """What the worker publishes for these events (one partition, event clock), as the sink's rows."""
    processor = Processor(Evaluator(default_calendar(), default_catalogue()),
                          Clock("event", allowed_lateness=timedelta(0)))
    store, out = DictStore(), {}
    records = [events.encode(e) for e in sorted(evs, key=lambda e: e.occurred_at)] + list(JUNK)
    for offset, raw in enumerate(records):
        fx = processor.on_event(0, offset, raw, store)
        produced = [(alert_rows, encode_alert(a)) for a in fx.alerts]
        produced += [(dead_letter_rows, dlq.encode(d)) for d in fx.dead_letters]
        for to_rows, value in produced:
            for table, rows in to_rows(value, 0, offset).items():
                out.setdefault(table, []).extend(rows)
    for batch in processor.counters.drain({0: processor.clock.now(0)}):
        for table, rows in counter_rows(msgspec.json.encode(batch), 0, 0).items():
            out.setdefault(table, []).extend(rows)
    return out


def seed_pipeline(settings: Settings, evs: list[DossierEvent], token: str = "seed") -> None:
    client = connect(settings)
    try:
        ensure_schema(client, settings.clickhouse_database)
        _write(client, settings.clickhouse_database, {**event_table(evs), **processed(evs)}, token)
    finally:
        client.close()
