"""Five years of one province's dossiers, generated inside ClickHouse with INSERT … SELECT FROM numbers().

The path (docs/benchmarks.md, "History at scale"): a dossier is a row number
``n``. Its facts follow from ``n`` and a hash of it: the working day it was
accepted (dossiers spread evenly over the working days of the period, in
order), the hour (working hours, Asia/Ho_Chi_Minh), the commune (skewed: big
communes receive more), the procedure (the simulator's catalogue mix), the
channel (30% online, 2% by post), the due date (the procedure's legal time),
and whether it finished late (2%, DOMAIN.md). From the facts come:

- ``dossier_events``: five events per dossier (accepted, step assigned, step
  completed, result ready, result returned), those after the period's end
  left out, in the same table, columns and ordering key the sink writes;
- the worker's published counters as the worker would leave them after
  folding that history (``throughput_partition`` hour and day buckets,
  ``ontime_partition`` day and month periods, ``backlog_partition`` now),
  one row per key and source partition (``cityHash64(dossier_id) % 12``);
- ``alerts``: an overdue alert at each late dossier's due date, its clearing
  when it finished, an escalation for dossiers still open three days after.

Nothing here goes through Kafka or the worker: this measures the store and the
panels' queries, not the stream (docs/benchmarks.md has the stream's rates).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from onestop.catalogue import default_catalogue
from onestop.communes import communes_of
from producers.sim_config import DEFAULT_MIX
from sinks import history_schema as history, schema

EVENTS_PER_DOSSIER = 5
PARTITIONS = 12
VN_OFFSET_S = 7 * 3600


@dataclass(frozen=True)
class History:
    dossiers: int
    start: date = date(2021, 11, 1)  # a Monday
    years: int = 5
    province: str = "42"

    @property
    def working_days(self) -> int:
        return self.years * 261

    @property
    def end(self) -> datetime:
        """The store's clock at the end of the history: 16:00 local on the last working day."""
        wd = self.working_days - 1
        day = self.start + timedelta(days=wd + 2 * (wd // 5))
        return datetime.combine(day, time(9, 0), tzinfo=timezone.utc)


def _array(values: list) -> str:
    return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else repr(v) for v in values) + "]"


def _facts(h: History, first: int, count: int) -> str:
    """One row per dossier: the facts every generated table is derived from."""
    communes = [c.code for c in communes_of(h.province)]
    catalogue = default_catalogue()
    codes = list(DEFAULT_MIX)
    weights = [DEFAULT_MIX[c] for c in codes]
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(round(total / sum(weights), 6))
    legal = [catalogue.get(c).legal_time if catalogue.get(c).time_unit.value != "same_day" else 0 for c in codes]
    fields = [catalogue.get(c).field for c in codes]
    start = datetime.combine(h.start, time(0), tzinfo=timezone.utc).timestamp() - VN_OFFSET_S  # local midnight
    return f"""
SELECT number AS n, cityHash64(number) AS r,
       {_array(communes)}[1 + toUInt32(floor(pow((r % 10007) / 10007, 1.7) * {len(communes)}))] AS commune,
       arrayFirstIndex(x -> x >= ((intDiv(r, 10007) % 100003) / 100003), {_array(cumulative)}) AS pi,
       {_array(codes)}[pi] AS procedure, {_array(fields)}[pi] AS field, {_array(legal)}[pi] AS legal_days,
       multiIf(intDiv(r, 1000000007) % 100 < 30, 2, intDiv(r, 1000000007) % 100 < 32, 3, 1) AS channel,
       intDiv(n * {h.working_days}, {h.dossiers}) AS wd,
       toDateTime64({start:.0f} + (wd + 2 * intDiv(wd, 5)) * 86400 + 27000 + intDiv(r, 77) % 32400, 3, 'UTC') AS accepted,
       toDateTime64(toUnixTimestamp(toStartOfDay(accepted + toIntervalDay(toUInt32(ceil(legal_days * 1.4))), 'Asia/Ho_Chi_Minh'))
                    + 61200, 3, 'UTC') AS due,  -- 17:00 local on the due day
       intDiv(r, 13) % 1000 < 20 AS late,
       if(late, due + toIntervalSecond(3600 * (4 + intDiv(r, 17) % 100)),
          accepted + toIntervalSecond(toUInt32((toUnixTimestamp(due) - toUnixTimestamp(accepted)) * (0.2 + (intDiv(r, 19) % 70) / 100)))) AS finished,
       concat('B{h.province}.', commune, '-', toString(n)) AS dossier_id,
       toUInt16(cityHash64(dossier_id) % {PARTITIONS}) AS source_partition
FROM numbers({first}, {count})"""


def events_insert(h: History, db: str, first: int, count: int) -> str:
    end = f"toDateTime64('{h.end:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
    return f"""
INSERT INTO {db}.{schema.EVENTS} (event_id, event_type, dossier_id, seq, occurred_at, commune_code, handling_commune_code,
    procedure_code, channel, due_at, step, reason, source, schema_version, kafka_partition, kafka_offset)
SELECT concat(dossier_id, '-', toString(e.1)) AS event_id, e.2 AS event_type, dossier_id, e.1 AS seq, e.3 AS occurred_at,
       commune, commune, procedure, channel, if(e.1 = 1, due, NULL), NULL, NULL, 'bench', 1, source_partition, n * 5 + e.1
FROM ({_facts(h, first, count)})
ARRAY JOIN [(toUInt32(1), 'accepted', accepted),
            (toUInt32(2), 'step_assigned', accepted + toIntervalSecond(600)),
            (toUInt32(3), 'step_completed', accepted + toIntervalSecond(intDiv(toUnixTimestamp(finished) - toUnixTimestamp(accepted), 2))),
            (toUInt32(4), 'result_ready', finished),
            (toUInt32(5), 'result_returned', finished + toIntervalSecond(86400))] AS e
WHERE e.3 <= {end}
SETTINGS max_insert_threads = 2"""


def facts_table(h: History, db: str) -> list[str]:
    """The facts once, as a table: the counters and alerts are grouped from it."""
    return [f"DROP TABLE IF EXISTS {db}.bench_facts",
            f"CREATE TABLE {db}.bench_facts ENGINE = MergeTree ORDER BY n AS {_facts(h, 0, h.dossiers)}"]


def counters_inserts(h: History, db: str) -> list[str]:
    end = f"toDateTime64('{h.end:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
    facts = f"{db}.bench_facts"
    measures = f"""ARRAY JOIN [('received', accepted), ('resolved', finished), ('returned', finished + toIntervalSecond(86400))] AS m
WHERE m.2 <= {end}"""
    buckets = {"h": "toStartOfHour(m.2)", "d": "toStartOfDay(m.2, 'Asia/Ho_Chi_Minh')"}
    statements = []
    for gran, bucket in buckets.items():
        statements.append(f"""
INSERT INTO {db}.{schema.THROUGHPUT_PARTS} (granularity, bucket_start, commune_code, field, channel, measure, source_partition, n, version)
SELECT '{gran}', toDateTime64({bucket}, 3, 'UTC') AS b, commune, field, channel, m.1, source_partition, toInt32(count()), 1
FROM {facts} {measures}
GROUP BY b, commune, field, channel, m.1, source_partition""")
    outcome = ("multiIf(late, 'overdue', toDate(finished, 'Asia/Ho_Chi_Minh') < toDate(due, 'Asia/Ho_Chi_Minh'), "
               "'before_due', 'on_due')")
    for gran, period in (("d", "toDate(finished, 'Asia/Ho_Chi_Minh')"), ("mo", "toStartOfMonth(toDate(finished, 'Asia/Ho_Chi_Minh'))")):
        statements.append(f"""
INSERT INTO {db}.{schema.ONTIME_PARTS} (granularity, period_start, commune_code, procedure_code, field, outcome, source_partition, n, version)
SELECT '{gran}', {period} AS p, commune, procedure, field, {outcome} AS o, source_partition, toInt32(count()), 1
FROM {facts} WHERE finished <= {end}
GROUP BY p, commune, procedure, field, o, source_partition""")
    age = (f"multiIf(age < 86400, '0-1d', age < 3 * 86400, '1-3d', age < 7 * 86400, '3-7d', age < 15 * 86400, '7-15d', "
           f"age < 30 * 86400, '15-30d', '>30d')")
    sla = f"multiIf(due < {end}, 'overdue', toUnixTimestamp(due) - toUnixTimestamp({end}) < 86400, 'due_soon', 'within_due')"
    statements.append(f"""
INSERT INTO {db}.{schema.BACKLOG_PARTS} (commune_code, field, procedure_code, channel, sla, waiting, age_bucket, escalated,
    source_partition, n, version, as_of)
SELECT commune, field, procedure, channel, {sla} AS s, 'none', {age} AS a,
       due < {end} - toIntervalDay(3) AS esc, source_partition, toInt32(count()), 1, {end}
FROM (SELECT *, toUnixTimestamp({end}) - toUnixTimestamp(accepted) AS age FROM {facts}
      WHERE accepted <= {end} AND finished > {end})
GROUP BY commune, field, procedure, channel, s, a, esc, source_partition""")
    statements.append(f"""
INSERT INTO {db}.{schema.ALERTS} (alert_id, kind, dossier_id, commune_code, receiving_commune_code, procedure_code, field,
    due_at, original_due_at, fired_at, clock, reason, clears)
SELECT concat(dossier_id, ':', a.1), a.1, dossier_id, commune, commune, procedure, field, due, due, a.2, 'event', '',
       if(a.1 = 'cleared', concat(dossier_id, ':overdue'), NULL)
FROM {facts}
ARRAY JOIN [('overdue', due + toIntervalSecond(1)), ('cleared', finished),
            ('escalation', due + toIntervalDay(3))] AS a
WHERE late AND a.2 <= {end} AND due <= {end}
  AND (a.1 != 'escalation' OR finished > due + toIntervalDay(3))""")
    # The current state of every dossier, as the sink keeps it from dossier.state: the overdue list reads it.
    statements.append(f"""
INSERT INTO {db}.{history.DOSSIERS} (dossier_id, status, commune_code, handling_commune_code, procedure_code, field,
    channel, submitted_at, accepted_at, finished_at, returned_at, original_due_at, due_at, judged_due_at, sla_class,
    escalated, outcome, paused, supplement_count, extension_count, calendar_version, procedure_version, last_seq,
    last_event_at, source_partition, version, kafka_offset)
SELECT dossier_id, toUInt8(multiIf(returned <= {end}, 10, finished <= {end}, 9, 4)) AS status, commune, commune,
       procedure, field, channel, accepted, accepted, if(finished <= {end}, finished, NULL),
       if(returned <= {end}, returned, NULL), due, due, due, if(finished > {end}, {sla}, NULL),
       finished > {end} AND due < {end} - toIntervalDay(3), if(finished <= {end}, {outcome}, NULL), false, 0, 0,
       'bench', 'bench', toUInt32(multiIf(returned <= {end}, 5, finished <= {end}, 4, 3)) AS seq,
       least(finished, {end}), source_partition, seq * 8, n
FROM (SELECT *, finished + toIntervalSecond(86400) AS returned FROM {facts} WHERE accepted <= {end})""")
    statements.append(f"DROP TABLE {facts}")
    return statements
