"""ClickHouse tables of the dossiers' history: their current state, and per-minute and per-day event counts.

- ``dossiers``: one row per dossier, fed from the worker's ``dossier.state``
  topic. It is a ReplacingMergeTree on ``version`` (``onestop.wire.dossier_version``):
  read it with FINAL, or through ``dossiers_now``.
- ``events_per_minute`` and ``events_per_day``: filled by materialized views on
  every insert into ``dossier_events``. They count distinct ``event_id`` with
  ``uniqExact`` states, so an event delivered twice (a retry, a producer that
  sent it again) is counted once, and they can be read without FINAL; the
  ``*_counts`` views merge the states.
- ``dossier_events_unique``: the raw events with duplicates removed, for readers
  who count rows without FINAL.

Columns are described in docs/data-dictionary.md.
"""

from __future__ import annotations

DEDUP = "non_replicated_deduplication_window = 10000"
EVENTS = "dossier_events"  # sinks.schema.EVENTS

DOSSIERS = "dossiers"
DOSSIERS_NOW = "dossiers_now"
PER_MINUTE = "events_per_minute"
PER_DAY = "events_per_day"
PER_MINUTE_MV = "events_per_minute_mv"
PER_DAY_MV = "events_per_day_mv"
PER_MINUTE_COUNTS = "events_per_minute_counts"
PER_DAY_COUNTS = "events_per_day_counts"
EVENTS_UNIQUE = "dossier_events_unique"

_TS = "DateTime64(3, 'UTC')"
_NTS = f"Nullable({_TS})"

TABLES: dict[str, str] = {
    DOSSIERS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{DOSSIERS} (
    dossier_id String, status Nullable(UInt8), commune_code LowCardinality(String),
    handling_commune_code LowCardinality(String), procedure_code LowCardinality(String),
    field LowCardinality(String), channel UInt8, submitted_at {_NTS}, accepted_at {_NTS}, finished_at {_NTS},
    returned_at {_NTS}, original_due_at {_NTS}, due_at {_NTS}, judged_due_at {_NTS},
    sla_class LowCardinality(Nullable(String)), escalated Bool, outcome LowCardinality(Nullable(String)),
    paused Bool, supplement_count UInt16, extension_count UInt16,
    calendar_version LowCardinality(Nullable(String)), procedure_version LowCardinality(Nullable(String)),
    last_seq UInt32, last_event_at {_NTS}, source_partition UInt16, version UInt64,
    kafka_offset UInt64, updated_at {_TS} DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version) ORDER BY dossier_id
SETTINGS {DEDUP}""",
    PER_MINUTE: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{PER_MINUTE} (
    minute {_TS}, commune_code LowCardinality(String), handling_commune_code LowCardinality(String),
    event_type LowCardinality(String), events AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(minute)
ORDER BY (minute, commune_code, handling_commune_code, event_type)
SETTINGS {DEDUP}""",
    PER_DAY: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{PER_DAY} (
    day Date, commune_code LowCardinality(String), handling_commune_code LowCardinality(String),
    event_type LowCardinality(String), procedure_code LowCardinality(String),
    events AggregateFunction(uniqExact, String), dossiers AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(day)
ORDER BY (day, commune_code, handling_commune_code, event_type, procedure_code)
SETTINGS {DEDUP}""",
}

MATERIALIZED: dict[str, str] = {
    PER_MINUTE_MV: f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{PER_MINUTE_MV} TO {{db}}.{PER_MINUTE} AS
SELECT toDateTime64(toStartOfMinute(occurred_at), 3, 'UTC') AS minute, commune_code, handling_commune_code, event_type,
       uniqExactState(event_id) AS events
FROM {{db}}.{EVENTS} GROUP BY minute, commune_code, handling_commune_code, event_type""",
    # Days are local (Asia/Ho_Chi_Minh): the day a commune's staff worked.
    PER_DAY_MV: f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{PER_DAY_MV} TO {{db}}.{PER_DAY} AS
SELECT toDate(occurred_at, 'Asia/Ho_Chi_Minh') AS day, commune_code, handling_commune_code, event_type,
       procedure_code, uniqExactState(event_id) AS events, uniqExactState(dossier_id) AS dossiers
FROM {{db}}.{EVENTS} GROUP BY day, commune_code, handling_commune_code, event_type, procedure_code""",
}

VIEWS: dict[str, str] = {
    DOSSIERS_NOW: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{DOSSIERS_NOW} AS
SELECT * EXCEPT (kafka_offset, updated_at) FROM {{db}}.{DOSSIERS} FINAL""",
    PER_MINUTE_COUNTS: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{PER_MINUTE_COUNTS} AS
SELECT minute, commune_code, handling_commune_code, event_type, uniqExactMerge(events) AS events
FROM {{db}}.{PER_MINUTE} GROUP BY minute, commune_code, handling_commune_code, event_type""",
    PER_DAY_COUNTS: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{PER_DAY_COUNTS} AS
SELECT day, commune_code, handling_commune_code, event_type, procedure_code, uniqExactMerge(events) AS events,
       uniqExactMerge(dossiers) AS dossiers
FROM {{db}}.{PER_DAY} GROUP BY day, commune_code, handling_commune_code, event_type, procedure_code""",
    EVENTS_UNIQUE: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{EVENTS_UNIQUE} AS
SELECT * EXCEPT (kafka_partition, kafka_offset, ingested_at) FROM {{db}}.{EVENTS} FINAL""",
}
