"""The ClickHouse panels of the IOC: stat tiles, throughput, rankings, the overdue list, Decision 766.

Each panel reads what the pipeline publishes: the worker's counters
(``backlog_by_commune``, ``backlog_now``, ``throughput``, ``ontime``: absolute
counts per source partition, added up by the views), the SLA alerts, and the
raw events. Reception counts belong to the receiving commune; backlog,
timeliness and alerts to the handling commune (DOMAIN.md).
"""

from __future__ import annotations

from dashboards.model import Panel
from dashboards.sql import (AGE_ORDER, ALERT_NAMES, FINISHING, LAST_30_DAYS, NOW, ON_TIME, T_ALERTS, T_BACKLOG,
                            T_BACKLOG_NOW, T_DOSSIERS, T_EVENTS, T_ONTIME, T_THROUGHPUT, TODAY, TODAY_START, TZ, mapping,
                            procedure_name, with_commune_names)

RATE_STEPS = ((None, "red"), (0.9, "orange"), (0.97, "green"))

RECEIVED_TODAY = Panel(
    "received_today", "Tiếp nhận hôm nay theo kênh", "Received today by channel",
    "Dossiers accepted (status 2) since local midnight of the range's end, by the channel the citizen used: "
    "in person, online, public postal service. Counted for the receiving commune, from the worker's daily "
    "throughput buckets (measure received).",
    f"""SELECT sumIf(dossiers, channel = 1) AS `Trực tiếp`, sumIf(dossiers, channel = 2) AS `Trực tuyến`,
       sumIf(dossiers, channel = 3) AS `Bưu chính`
FROM {T_THROUGHPUT}
WHERE granularity = 'd' AND measure = 'received' AND bucket_start = {TODAY_START} AND @scope(commune_code)""",
    "stat", width=6)

OPEN_BACKLOG = Panel(
    "open_backlog", "Hồ sơ đang giải quyết", "Open backlog",
    "Dossiers accepted and not yet finished (status 2, 4, 5, 6), now, for the handling commune: "
    "within due, due soon and overdue together, including those waiting for a supplement or a payment.",
    f"SELECT sum(open_dossiers) AS `Đang giải quyết` FROM {T_BACKLOG} WHERE @scope(commune_code)",
    "stat", width=3, thresholds=((None, "blue"),))

DUE_SOON = Panel(
    "due_soon", "Sắp đến hạn", "Due soon",
    "Open dossiers not yet overdue whose due date falls within the due-soon horizon "
    "(ONESTOP_DUE_SOON_HOURS working hours, one working day by default), now.",
    f"SELECT sum(due_soon) AS `Sắp đến hạn` FROM {T_BACKLOG} WHERE @scope(commune_code)",
    "stat", width=3, thresholds=((None, "green"), (1, "orange")))

OVERDUE_NOW = Panel(
    "overdue_now", "Quá hạn hiện tại", "Overdue now",
    "Open dossiers whose effective due date (the latest extension's date, else the receipt's) has passed, now. "
    "Paused dossiers keep the verdict they had when the clock stopped.",
    f"SELECT sum(overdue) AS `Quá hạn` FROM {T_BACKLOG} WHERE @scope(commune_code)",
    "stat", width=3, thresholds=((None, "green"), (1, "red")))

ONTIME_30D = Panel(
    "ontime_30d", "Tỷ lệ đúng hạn 30 ngày (Biểu 06)", "On-time rate, 30 days (Form 06)",
    "(resolved before due + on due) / resolved, over dossiers finished in the 30 local days ending today, "
    "judged against the receipt's original due date by calendar date (Form 06/VPCP/KSTT).",
    f"""SELECT sumIf(dossiers, outcome IN {ON_TIME}) / nullIf(sum(dossiers), 0) AS `Đúng hạn`
FROM {T_ONTIME} WHERE granularity = 'd' AND {LAST_30_DAYS} AND @scope(commune_code)""",
    "stat", unit="percentunit", width=3, decimals=1, thresholds=RATE_STEPS)

ONLINE_SHARE = Panel(
    "online_share", "766 · Tỷ lệ nộp trực tuyến", "766 · Online submission share",
    "Accepted dossiers filed online (channel 2) / all accepted dossiers, over the 30 local days ending today, "
    "for the receiving commune. Decision 766 scores it against a 50% threshold.",
    f"""SELECT sumIf(dossiers, channel = 2) / nullIf(sum(dossiers), 0) AS `Trực tuyến`
FROM {T_THROUGHPUT}
WHERE granularity = 'd' AND measure = 'received' AND bucket_start > {TODAY_START} - INTERVAL 30 DAY
  AND bucket_start <= {TODAY_START} AND @scope(commune_code)""",
    "stat", unit="percentunit", width=3, decimals=1, thresholds=((None, "orange"), (0.5, "green")))

ONTIME_766 = Panel(
    "ontime_766", "766 · Tỷ lệ đúng hạn (§2.1)", "766 · On-time rate (§2.1)",
    "(dossiers resolved on time in the 30 days + dossiers in progress within due now) / (dossiers resolved in "
    "the 30 days + dossiers in progress now): the progress indicator of Decision 766/QĐ-TTg §2.1.",
    f"""SELECT (r.on_time + b.within_due) / nullIf(r.resolved + b.open, 0) AS `Đúng hạn 766`
FROM (SELECT sumIf(dossiers, outcome IN {ON_TIME}) AS on_time, sum(dossiers) AS resolved
      FROM {T_ONTIME} WHERE granularity = 'd' AND {LAST_30_DAYS} AND @scope(commune_code)) AS r
CROSS JOIN (SELECT sum(open_dossiers) - sum(overdue) AS within_due, sum(open_dossiers) AS open
            FROM {T_BACKLOG} WHERE @scope(commune_code)) AS b""",
    "stat", unit="percentunit", width=3, decimals=1, thresholds=RATE_STEPS)

THROUGHPUT = Panel(
    "throughput", "Tiếp nhận và giải quyết theo thời gian", "Received and resolved over time",
    "Dossiers accepted (for the receiving commune) and finished (for the handling commune) per interval, "
    "from the worker's minute, hour or day buckets, whichever the interval allows; an interval with none shows 0.",
    f"""SELECT $__timeInterval(bucket_start) AS time,
       sumIf(dossiers, measure = 'received') AS `Tiếp nhận`, sumIf(dossiers, measure = 'resolved') AS `Giải quyết`
FROM {T_THROUGHPUT}
WHERE granularity = multiIf($__interval_s >= 86400, 'd', $__interval_s >= 3600, 'h', 'm')
  AND $__timeFilter(bucket_start) AND @scope(commune_code)
GROUP BY time
ORDER BY time WITH FILL FROM toStartOfInterval($__fromTime, INTERVAL $__interval_s second) TO $__toTime
  STEP toIntervalSecond($__interval_s)""",
    "timeseries", width=16, height=8, time_series=True, min_interval="1h")

# Dossiers finished in the 30 days, joined to their acceptance in the half year before. Both sides are read
# from the events' projection by type and time, and keyed by the dossier id's 64-bit hash, which groups and
# joins several times faster than the string (two of 20 million ids collide with odds of about 1 in 100,000).
_FINISHED_30D = f"""SELECT cityHash64(dossier_id) AS dossier, min(occurred_at) AS finished, any(procedure_code) AS procedure
      FROM {T_EVENTS}
      WHERE event_type IN {FINISHING} AND occurred_at > {NOW} - INTERVAL 31 DAY AND occurred_at <= {NOW}
        AND @scope(handling_commune_code)
      GROUP BY dossier HAVING toDate(finished, {TZ}) > {TODAY} - 30"""
_ACCEPTED_180D = f"""SELECT cityHash64(dossier_id) AS dossier, min(occurred_at) AS accepted
      FROM {T_EVENTS}
      WHERE event_type = 'accepted' AND occurred_at > {NOW} - INTERVAL 180 DAY AND occurred_at <= {NOW}
        AND @scope(handling_commune_code)
      GROUP BY dossier"""

RESOLUTION_TIME = Panel(
    "resolution_time", "766 · Thời gian giải quyết trung bình theo thủ tục", "766 · Average resolution time per procedure",
    "Mean calendar days from acceptance to the result (or to the terminal event), over dossiers finished in the "
    "30 local days ending today and accepted in the 180 days before; pauses are not subtracted. From raw events.",
    f"""SELECT {procedure_name('procedure')} AS `Thủ tục`, round(avg(dateDiff('second', accepted, finished)) / 86400, 2) AS `Ngày`,
       count() AS `Hồ sơ`
FROM ({_FINISHED_30D}) AS f
INNER JOIN ({_ACCEPTED_180D}) AS a ON a.dossier = f.dossier
GROUP BY procedure ORDER BY `Ngày` DESC, procedure""",
    "barchart", unit="d", width=8, height=8, decimals=1)

# A side missing from the full join reads as '' and 0 (join_use_nulls stays off: chDB returns no rows with it).
_RANKING = f"""SELECT if(o.commune_code != '', o.commune_code, b.commune_code) AS commune_code, o.rate AS rate, o.resolved AS resolved,
       b.overdue AS overdue, b.open AS open
FROM (SELECT commune_code, sumIf(dossiers, outcome IN {ON_TIME}) / sum(dossiers) AS rate, sum(dossiers) AS resolved
      FROM {T_ONTIME} WHERE granularity = 'd' AND {LAST_30_DAYS} AND @scope(commune_code) GROUP BY commune_code) AS o
FULL OUTER JOIN (SELECT commune_code, sum(overdue) AS overdue, sum(open_dossiers) AS open
                 FROM {T_BACKLOG} WHERE @scope(commune_code) GROUP BY commune_code) AS b
  ON b.commune_code = o.commune_code"""

RANK_ONTIME = Panel(
    "rank_ontime", "Xếp hạng xã/phường theo tỷ lệ đúng hạn", "Commune ranking by on-time rate",
    "Each handling commune's Form 06 on-time rate over the 30 local days ending today, lowest first; communes "
    "that resolved nothing in the period are left out.",
    f"""SELECT commune_name AS `Xã/phường`, rate AS `Đúng hạn`, resolved AS `Đã giải quyết`
FROM ({with_commune_names(_RANKING)}) WHERE resolved > 0 ORDER BY rate ASC, resolved DESC, commune_code LIMIT 20""",
    "bargauge", unit="percentunit", width=12, height=10, decimals=1, thresholds=RATE_STEPS)

RANK_OVERDUE = Panel(
    "rank_overdue", "Xếp hạng xã/phường theo số hồ sơ quá hạn", "Commune ranking by overdue count",
    "Open dossiers overdue now per handling commune, most first; communes with none are left out.",
    f"""SELECT commune_name AS `Xã/phường`, overdue AS `Quá hạn`, open AS `Đang giải quyết`
FROM ({with_commune_names(_RANKING)}) WHERE overdue > 0 ORDER BY overdue DESC, commune_code LIMIT 20""",
    "bargauge", width=12, height=10, thresholds=((None, "red"),))

# The dossiers' current state (``dossiers``, fed by the worker's dossier.state) holds the due instant the
# SLA class was judged against, which a pause or an extension moves after the first overdue alert.
_OVERDUE_DOSSIERS = f"""SELECT dossier_id, handling_commune_code AS handling, procedure_code AS procedure,
       field AS field_name, if(escalated, 'escalation', 'overdue') AS last_kind, judged_due_at AS due
FROM {T_DOSSIERS} WHERE sla_class = 'overdue' AND status IN (2, 4, 5, 6) AND @scope(handling_commune_code)"""

OVERDUE_LIST = Panel(
    "overdue_list", "Danh sách hồ sơ quá hạn", "Overdue dossiers",
    "Open dossiers overdue now, from the current state of every dossier, most overdue first. Days overdue count "
    "calendar days from the due date as it stands (after extensions and the pauses that have ended; while the "
    "dossier waits for the citizen it stands still) to today; escalation "
    "means overdue for ONESTOP_ESCALATE_AFTER_WORKING_DAYS working days, reported to the unit's leaders.",
    f"""SELECT dossier_id AS `Hồ sơ`, commune_name AS `Xã/phường xử lý`, {procedure_name('procedure')} AS `Thủ tục`,
       field_name AS `Lĩnh vực`, dateDiff('day', toDate(due, {TZ}), {TODAY}) AS `Số ngày quá hạn`,
       formatDateTime(due, '%d/%m/%Y %H:%i', {TZ}) AS `Hạn xử lý`, {mapping('last_kind', ALERT_NAMES)} AS `Mức cảnh báo`
FROM ({with_commune_names(_OVERDUE_DOSSIERS, code="handling")})
ORDER BY `Số ngày quá hạn` DESC, due, dossier_id LIMIT 100""",
    "table", width=24, height=10)

OPEN_BY_AGE = Panel(
    "open_by_age", "Hồ sơ đang giải quyết theo tuổi và hạn", "Open dossiers by age and SLA bucket",
    "Open dossiers now by calendar days since acceptance, split within due / due soon / overdue.",
    f"""SELECT age_bucket AS `Tuổi hồ sơ`, sumIf(open_dossiers, sla = 'within_due') AS `Trong hạn`,
       sumIf(open_dossiers, sla = 'due_soon') AS `Sắp đến hạn`, sumIf(open_dossiers, sla = 'overdue') AS `Quá hạn`
FROM {T_BACKLOG_NOW} WHERE @scope(commune_code)
GROUP BY age_bucket ORDER BY indexOf({AGE_ORDER}, age_bucket)""",
    "barchart", width=8, height=8)

RECENT_ALERTS = Panel(
    "recent_alerts", "Cảnh báo gần đây", "Recent alerts",
    "The latest SLA alerts of the handling commune within the time range: due soon, overdue, escalation, cleared.",
    f"""SELECT formatDateTime(fired, '%d/%m %H:%i', {TZ}) AS `Thời điểm`, {mapping('kind', ALERT_NAMES)} AS `Loại`,
       dossier_id AS `Hồ sơ`, {procedure_name()} AS `Thủ tục`, formatDateTime(due, '%d/%m/%Y %H:%i', {TZ}) AS `Hạn xử lý`
FROM (SELECT alert_id, any(kind) AS kind, any(dossier_id) AS dossier_id, any(procedure_code) AS procedure_code,
             any(due_at) AS due, any(fired_at) AS fired
      FROM {T_ALERTS} WHERE $__timeFilter(fired_at) AND @scope(commune_code) GROUP BY alert_id)
ORDER BY fired DESC, alert_id LIMIT 50""",
    "table", width=24, height=9)

TILES = (RECEIVED_TODAY, OPEN_BACKLOG, DUE_SOON, OVERDUE_NOW, ONTIME_30D, ONLINE_SHARE, ONTIME_766)
