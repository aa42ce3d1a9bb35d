"""ClickHouse tables and views of the communes' service practices and of late data.

The worker's practice counters (``onestop.practices.practice_keys``) arrive like the other
counters: absolute values per source partition with a version, voided by a later rebuild's
epoch (``sinks.schema``). Late data is measured on the raw events: every record of
``dossier.events`` leaves one row in ``event_deliveries`` with its arrival (the Kafka record
timestamp, or the simulator's simulated arrival) and whether it came through a spool.
Columns are described in docs/data-dictionary.md.
"""

from __future__ import annotations

DEDUP = "non_replicated_deduplication_window = 10000"
EPOCHS = "counter_epochs"  # sinks.schema.EPOCHS

SAMEDAY_PARTS = "sameday_partition"
SERVICE_PARTS = "service_activity_partition"
SATISFACTION_PARTS = "satisfaction_partition"
DELIVERIES = "event_deliveries"
SAMEDAY = "same_day"
SAMEDAY_RATES = "same_day_rates"
SERVICE = "service_activity"
SATISFACTION = "satisfaction"
LATE_DATA = "late_data"

_PARTS = "source_partition UInt16, n Int32, version UInt64"
_LIVE = """FROM {{db}}.{table} AS r FINAL
LEFT JOIN (SELECT source_partition, max(epoch) AS epoch FROM {{db}}.{epochs} GROUP BY source_partition) AS e
    ON e.source_partition = r.source_partition
WHERE r.version >= e.epoch"""


def _live(table: str) -> str:
    return _LIVE.format(table=table, epochs=EPOCHS)


TABLES: dict[str, str] = {
    SAMEDAY_PARTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{SAMEDAY_PARTS} (
    day Date, commune_code LowCardinality(String), procedure_code LowCardinality(String),
    reception_point LowCardinality(String), no_appointment_day Bool, listed Bool, measure LowCardinality(String),
    {_PARTS}
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(day)
ORDER BY (day, commune_code, procedure_code, reception_point, no_appointment_day, listed, measure, source_partition)
SETTINGS {DEDUP}""",
    SERVICE_PARTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{SERVICE_PARTS} (
    day Date, commune_code LowCardinality(String), service LowCardinality(String),
    reception_point LowCardinality(String), procedure_code LowCardinality(String),
    beneficiary_group LowCardinality(String), {_PARTS}
) ENGINE = ReplacingMergeTree(version) PARTITION BY toYYYYMM(day)
ORDER BY (day, commune_code, service, reception_point, procedure_code, beneficiary_group, source_partition)
SETTINGS {DEDUP}""",
    SATISFACTION_PARTS: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{SATISFACTION_PARTS} (
    month Date, commune_code LowCardinality(String), measure LowCardinality(String), {_PARTS}
) ENGINE = ReplacingMergeTree(version)
ORDER BY (month, commune_code, measure, source_partition)
SETTINGS {DEDUP}""",
    # One row per record of dossier.events; a record delivered twice has two rows, and the views
    # take its first arrival.
    DELIVERIES: f"""
CREATE TABLE IF NOT EXISTS {{db}}.{DELIVERIES} (
    event_id String, dossier_id String, commune_code LowCardinality(String), occurred_at DateTime64(3, 'UTC'),
    arrived_at DateTime64(3, 'UTC'), spooled Bool, kafka_partition UInt16, kafka_offset UInt64
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(arrived_at)
ORDER BY (commune_code, arrived_at, event_id, kafka_partition, kafka_offset)
SETTINGS {DEDUP}""",
}

# Contract 1.1 on the raw events: added to stores made before it (a no-op on new ones).
ALTERS: tuple[str, ...] = tuple(
    f"ALTER TABLE {{db}}.dossier_events ADD COLUMN IF NOT EXISTS {column}" for column in (
        "reception_point LowCardinality(Nullable(String))",
        "beneficiary_group Nullable(String)",
        "rating_score Nullable(UInt8)",
        "rating_complaint Nullable(Bool)",
        "rating_via LowCardinality(Nullable(String))",
    ))

VIEWS: dict[str, str] = {
    SAMEDAY: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{SAMEDAY} AS
SELECT day, commune_code, procedure_code, reception_point, no_appointment_day, listed, measure, sum(n) AS dossiers
{_live(SAMEDAY_PARTS)}
GROUP BY day, commune_code, procedure_code, reception_point, no_appointment_day, listed, measure
HAVING dossiers != 0""",
    # Same-day resolution per day, commune, procedure; promises are missed only once the day is over.
    SAMEDAY_RATES: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{SAMEDAY_RATES} AS
SELECT day, toDayOfWeek(day) AS weekday, commune_code, procedure_code, no_appointment_day,
       sumIf(dossiers, measure = 'received') AS received, sumIf(dossiers, measure = 'same_day') AS same_day,
       sumIf(dossiers, measure = 'received' AND promise) AS promised,
       sumIf(dossiers, measure = 'same_day' AND promise) AS kept,
       if(day < toDate(now(), 'Asia/Ho_Chi_Minh'), promised - kept, 0) AS missed_promises,
       if(received > 0, same_day / received, NULL) AS same_day_rate
FROM (SELECT *, no_appointment_day AND listed AND reception_point = 'counter' AS promise FROM {{db}}.{SAMEDAY})
GROUP BY day, commune_code, procedure_code, no_appointment_day""",
    SERVICE: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{SERVICE} AS
SELECT day, commune_code, service, reception_point, procedure_code, beneficiary_group, sum(n) AS dossiers
{_live(SERVICE_PARTS)}
GROUP BY day, commune_code, service, reception_point, procedure_code, beneficiary_group
HAVING dossiers != 0""",
    # Decision 766 §5.4: 100% − (overdue share + share with a complaint or a bad rating); full score at 90%.
    SATISFACTION: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{SATISFACTION} AS
SELECT month, commune_code, finished, overdue, complaint_or_bad_rating, rated,
       if(finished > 0, greatest(0, 1 - (overdue + complaint_or_bad_rating) / finished), NULL) AS satisfaction,
       if(finished > 0, least(1, greatest(0, 1 - (overdue + complaint_or_bad_rating) / finished) / 0.9), NULL)
           AS attainment
FROM (SELECT month, commune_code, sumIf(n, measure = 'finished') AS finished, sumIf(n, measure = 'overdue') AS overdue,
             sumIf(n, measure = 'complaint_or_bad_rating') AS complaint_or_bad_rating,
             sumIf(n, measure = 'rated') AS rated
      {_live(SATISFACTION_PARTS)}
      GROUP BY month, commune_code)
WHERE finished != 0 OR rated != 0""",
    # Per commune and local day of arrival; nearest-rank percentiles, as onestop.lateness.late_data.
    LATE_DATA: f"""
CREATE VIEW IF NOT EXISTS {{db}}.{LATE_DATA} AS
SELECT commune_code, day, length(delays) AS events, delays[intDiv(50 * length(delays) + 99, 100)] AS p50_ms,
       delays[intDiv(95 * length(delays) + 99, 100)] AS p95_ms, delays[length(delays)] AS max_ms, spooled, ahead,
       spooled / length(delays) AS spooled_share
FROM (
    SELECT commune AS commune_code, toDate(first_arrival, 'Asia/Ho_Chi_Minh') AS day,
           arraySort(groupArray(greatest(toInt64(0), delay_ms))) AS delays,
           countIf(first_spooled) AS spooled, countIf(delay_ms < 0) AS ahead
    FROM (SELECT event_id, any(d.commune_code) AS commune, min(d.arrived_at) AS first_arrival,
                 argMin(d.spooled, d.arrived_at) AS first_spooled,
                 toUnixTimestamp64Milli(min(d.arrived_at)) - toUnixTimestamp64Milli(any(d.occurred_at)) AS delay_ms
          FROM {{db}}.{DELIVERIES} AS d GROUP BY event_id)
    GROUP BY commune, day)""",
}
