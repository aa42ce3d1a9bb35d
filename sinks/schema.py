"""ClickHouse schema of the pipeline.

Rules every table follows (they make at-least-once delivery safe):
- ``non_replicated_deduplication_window`` is set, so a retried insert carrying
  the same ``insert_deduplication_token`` is dropped;
- tables that may see a row twice are ReplacingMergeTree, read with FINAL;
- the worker's counters arrive as absolute values per source partition with a
  version: the ``*_partition`` tables keep the latest version per key and the
  views add the partitions up;
- times are ``DateTime64(3, 'UTC')``; dashboards show them in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

DEDUP = "non_replicated_deduplication_window = 10000"

EVENTS = "dossier_events"
BACKLOG_PARTS = "backlog_partition"
THROUGHPUT_PARTS = "throughput_partition"
ONTIME_PARTS = "ontime_partition"
ALERTS = "alerts"
DEAD_LETTERS = "dead_letters"
COMMUNES = "communes"
EPOCHS = "counter_epochs"
BACKLOG = "backlog_by_commune"
BACKLOG_NOW = "backlog_now"
THROUGHPUT = "throughput"
ONTIME = "ontime"

_RMT = "ENGINE = ReplacingMergeTree"

TABLES: dict[str, str] = {
    EVENTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{EVENTS} (
    event_id String, event_type LowCardinality(String), dossier_id String, seq UInt32,
    occurred_at DateTime64(3, 'UTC'), commune_code LowCardinality(String),
    handling_commune_code LowCardinality(String), procedure_code LowCardinality(String), channel UInt8,
    due_at Nullable(DateTime64(3, 'UTC')), step Nullable(String), reason Nullable(String),
    source LowCardinality(String), schema_version UInt16, kafka_partition UInt16, kafka_offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
) {_RMT} PARTITION BY toYYYYMM(occurred_at) ORDER BY (commune_code, occurred_at, event_id)
SETTINGS {DEDUP}""",
    BACKLOG_PARTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{BACKLOG_PARTS} (
    commune_code LowCardinality(String), field LowCardinality(String), procedure_code LowCardinality(String),
    channel UInt8, sla LowCardinality(String), waiting LowCardinality(String), age_bucket LowCardinality(String),
    escalated Bool, source_partition UInt16, n Int32, version UInt64,
    as_of Nullable(DateTime64(3, 'UTC'))
) {_RMT}(version)
ORDER BY (commune_code, field, procedure_code, channel, sla, waiting, age_bucket, escalated, source_partition)
SETTINGS {DEDUP}""",
    THROUGHPUT_PARTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{THROUGHPUT_PARTS} (
    granularity LowCardinality(String), bucket_start DateTime64(3, 'UTC'), commune_code LowCardinality(String),
    field LowCardinality(String), channel UInt8, measure LowCardinality(String), source_partition UInt16,
    n Int32, version UInt64
) {_RMT}(version) PARTITION BY granularity
ORDER BY (granularity, bucket_start, commune_code, field, channel, measure, source_partition)
SETTINGS {DEDUP}""",
    ONTIME_PARTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{ONTIME_PARTS} (
    granularity LowCardinality(String), period_start Date, commune_code LowCardinality(String),
    procedure_code LowCardinality(String), field LowCardinality(String), outcome LowCardinality(String),
    source_partition UInt16, n Int32, version UInt64
) {_RMT}(version)
ORDER BY (granularity, period_start, commune_code, procedure_code, field, outcome, source_partition)
SETTINGS {DEDUP}""",
    ALERTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{ALERTS} (
    alert_id String, kind LowCardinality(String), dossier_id String, commune_code LowCardinality(String),
    receiving_commune_code LowCardinality(String), procedure_code LowCardinality(String),
    field LowCardinality(String), due_at Nullable(DateTime64(3, 'UTC')),
    original_due_at Nullable(DateTime64(3, 'UTC')), fired_at DateTime64(3, 'UTC'), clock LowCardinality(String),
    reason String, clears Nullable(String)
) {_RMT} ORDER BY alert_id
SETTINGS {DEDUP}""",
    DEAD_LETTERS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{DEAD_LETTERS} (
    kafka_partition UInt16, kafka_offset UInt64, reason_code LowCardinality(String), message String,
    source String, rejected_at DateTime64(3, 'UTC'), dossier_id Nullable(String), event_id Nullable(String),
    original_b64 String
) {_RMT} ORDER BY (kafka_partition, kafka_offset)
SETTINGS {DEDUP}""",
    # The version at which a worker last rebuilt a source partition's counters. Rows of that
    # partition with a lower version are void: the rebuild re-sent every count still non-zero.
    EPOCHS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{EPOCHS} (
    source_partition UInt16, epoch UInt64
) ENGINE = ReplacingMergeTree(epoch) ORDER BY source_partition
SETTINGS {DEDUP}""",
    COMMUNES: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{COMMUNES} (
    code String, name String, division_type LowCardinality(String), province_code LowCardinality(String),
    province_name LowCardinality(String)
) {_RMT} ORDER BY code
SETTINGS {DEDUP}""",
}

VIEWS: dict[str, str] = {
    # Backlog now, by every dimension: the latest count of each source partition, added up.
    BACKLOG_NOW: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{BACKLOG_NOW} AS
SELECT commune_code, field, procedure_code, channel, sla, waiting, age_bucket, escalated,
       sum(n) AS open_dossiers, max(as_of) AS as_of
FROM {{db}}.{BACKLOG_PARTS} AS r FINAL
LEFT JOIN (SELECT source_partition, max(epoch) AS epoch FROM {{db}}.{EPOCHS} GROUP BY source_partition) AS e
    ON e.source_partition = r.source_partition
WHERE r.version >= e.epoch
GROUP BY commune_code, field, procedure_code, channel, sla, waiting, age_bucket, escalated
HAVING open_dossiers != 0""",
    BACKLOG: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{BACKLOG} AS
SELECT commune_code, sum(n) AS open_dossiers,
       sumIf(n, sla = 'within_due') AS within_due, sumIf(n, sla = 'due_soon') AS due_soon,
       sumIf(n, sla = 'overdue') AS overdue, max(as_of) AS as_of
FROM {{db}}.{BACKLOG_PARTS} AS r FINAL
LEFT JOIN (SELECT source_partition, max(epoch) AS epoch FROM {{db}}.{EPOCHS} GROUP BY source_partition) AS e
    ON e.source_partition = r.source_partition
WHERE r.version >= e.epoch
GROUP BY commune_code""",
    THROUGHPUT: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{THROUGHPUT} AS
SELECT granularity, bucket_start, commune_code, field, channel, measure, sum(n) AS dossiers
FROM {{db}}.{THROUGHPUT_PARTS} AS r FINAL
LEFT JOIN (SELECT source_partition, max(epoch) AS epoch FROM {{db}}.{EPOCHS} GROUP BY source_partition) AS e
    ON e.source_partition = r.source_partition
WHERE r.version >= e.epoch
GROUP BY granularity, bucket_start, commune_code, field, channel, measure
HAVING dossiers != 0""",
    ONTIME: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{ONTIME} AS
SELECT granularity, period_start, commune_code, procedure_code, field, outcome, sum(n) AS dossiers
FROM {{db}}.{ONTIME_PARTS} AS r FINAL
LEFT JOIN (SELECT source_partition, max(epoch) AS epoch FROM {{db}}.{EPOCHS} GROUP BY source_partition) AS e
    ON e.source_partition = r.source_partition
WHERE r.version >= e.epoch
GROUP BY granularity, period_start, commune_code, procedure_code, field, outcome
HAVING dossiers != 0""",
}

