"""What the IOC panels need from the store beyond the pipeline's own tables: a projection of the raw events.

The panels that read raw events (average resolution time per procedure) ask
for a few event types over a time window: "dossiers finished in the last 30
days", then "their acceptance". ``dossier_events`` is ordered for other reads
(by commune, then time), so a projection keeps the columns those reads need
ordered by event type and time, and ClickHouse picks it by itself. A
ReplacingMergeTree with a projection must say what merges do to it:
``rebuild`` keeps the projection exact when duplicates are merged away.

The statements are idempotent and run after the tables exist; on a store that
already holds events, only parts written from then on carry the projection
until ``ALTER TABLE … MATERIALIZE PROJECTION events_by_type`` is run once.
"""

from __future__ import annotations

from sinks import schema

EVENTS_BY_TYPE = "events_by_type"


def statements(database: str) -> list[str]:
    table = f"{database}.{schema.EVENTS}"
    return [
        f"ALTER TABLE {table} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
        f"ALTER TABLE {table} ADD PROJECTION IF NOT EXISTS {EVENTS_BY_TYPE} "
        "(SELECT event_type, occurred_at, dossier_id, procedure_code, handling_commune_code "
        "ORDER BY event_type, occurred_at)",
    ]
