"""ClickHouse schema of the pipeline.

Rules every table follows (they make at-least-once delivery safe):
- ``non_replicated_deduplication_window`` is set, so a retried insert carrying
  the same ``insert_deduplication_token`` is dropped;
- tables that may see a row twice are ReplacingMergeTree and are read with
  FINAL (or argMax);
- times are ``DateTime64(3, 'UTC')``; dashboards show them in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

DEDUP = "non_replicated_deduplication_window = 10000"

EVENTS = "dossier_events"
BACKLOG_PARTS = "backlog_partition"
BACKLOG = "backlog_by_commune"
COMMUNES = "communes"

TABLES: dict[str, str] = {
    EVENTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{EVENTS} (
    event_id String,
    event_type LowCardinality(String),
    dossier_id String,
    seq UInt32,
    occurred_at DateTime64(3, 'UTC'),
    commune_code LowCardinality(String),
    handling_commune_code LowCardinality(String),
    procedure_code LowCardinality(String),
    channel UInt8,
    due_at Nullable(DateTime64(3, 'UTC')),
    step Nullable(String),
    reason Nullable(String),
    source LowCardinality(String),
    schema_version UInt16,
    kafka_partition UInt16,
    kafka_offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (commune_code, occurred_at, event_id)
SETTINGS {DEDUP}
""",
    BACKLOG_PARTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{BACKLOG_PARTS} (
    commune_code LowCardinality(String),
    source_partition UInt16,
    open_dossiers UInt32,
    version Int64,
    as_of Nullable(DateTime64(3, 'UTC')),
    written_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version)
ORDER BY (commune_code, source_partition)
SETTINGS {DEDUP}
""",
    COMMUNES: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{COMMUNES} (
    code String,
    name String,
    division_type LowCardinality(String),
    province_code LowCardinality(String),
    province_name LowCardinality(String)
) ENGINE = ReplacingMergeTree
ORDER BY code
SETTINGS {DEDUP}
""",
}

VIEWS: dict[str, str] = {
    # The backlog per commune now: latest count of each source partition, added up.
    BACKLOG: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{BACKLOG} AS
SELECT commune_code, sum(open_dossiers) AS open_dossiers, max(as_of) AS as_of
FROM {{db}}.{BACKLOG_PARTS} FINAL
GROUP BY commune_code
""",
}


def ddl(database: str) -> list[str]:
    stmts = [f"CREATE DATABASE IF NOT EXISTS {database}"]
    stmts += [sql.format(db=database).strip() for sql in TABLES.values()]
    stmts += [sql.format(db=database).strip() for sql in VIEWS.values()]
    return stmts
