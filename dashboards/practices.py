"""The panels of the communes' service practices: no-appointment days, weekend and village service,
766 §5.4 satisfaction, and the late-data map.

Each panel is a ``dashboards.model.Panel``, like every other panel of the IOC.
The SQL is written for Grafana's ClickHouse data source: ``{db}`` is the database,
``@scope(column)`` the commune filter (``1`` on the province overview, ``column = '${commune}'``
on the commune drill-down), and "now" is the end of the dashboard's range (``$__toTime``), never
the server's clock, so a replay or a simulation shows what was true at its own end.
The measures and their sources are in docs/domain.md ("Service practices", "Satisfaction",
"Late data"); the tables in docs/practices.md.
"""

from __future__ import annotations

from dashboards.model import Panel
from dashboards.sql import TODAY, with_commune_names
from sinks import practice_schema as ps

LAST_30_DAYS = f"day > {TODAY} - 30 AND day <= {TODAY}"
T_RATES = "{db}." + ps.SAMEDAY_RATES
T_SERVICE = "{db}." + ps.SERVICE
T_SATISFACTION = "{db}." + ps.SATISFACTION
T_LATE = "{db}." + ps.LATE_DATA
SERVICE_NAMES = "transform(service, ['weekend_service', 'village_service'], ['Ngày nghỉ vì Nhân dân', 'Về thôn'], service)"
RATE_STEPS = ((None, "red"), (0.7, "orange"), (0.9, "green"))


_SAME_DAY = f"""SELECT commune_code,
       sumIf(same_day, no_appointment_day) AS kept_days_same, sumIf(received, no_appointment_day) AS on_days,
       sumIf(same_day, NOT no_appointment_day) AS other_same, sumIf(received, NOT no_appointment_day) AS other_days,
       sumIf(promised - kept, day < {TODAY}) AS missed, sumIf(promised, day < {TODAY}) AS promised_done
FROM {T_RATES} WHERE {LAST_30_DAYS} AND @scope(commune_code)
GROUP BY commune_code HAVING on_days > 0"""

SAME_DAY_NO_APPOINTMENT = Panel(
    "same_day_no_appointment", "Giải quyết trong ngày: ngày không phiếu hẹn và ngày khác",
    "Same-day resolution: no-appointment days against other days",
    "For each commune that declared no-appointment days: dossiers received in person (counter or outreach) and "
    "resolved the same local day, as a share of those received, on its declared no-appointment days and on its "
    "other days, over the 30 local days ending today. Missed promises: listed procedures received at the counter "
    "on a no-appointment day and not resolved that day (days already over), apart from legal lateness.",
    f"""SELECT commune_name AS `Xã/phường`, kept_days_same / on_days AS `Ngày không phiếu hẹn`,
       other_same / nullIf(other_days, 0) AS `Ngày khác`, on_days AS `Hồ sơ ngày không phiếu hẹn`,
       missed AS `Lỡ hẹn trả trong ngày`, promised_done AS `Hồ sơ được hứa`
FROM ({with_commune_names(_SAME_DAY)}) ORDER BY `Ngày không phiếu hẹn` ASC, commune_code""",
    "table", unit="percentunit", width=14, height=8, decimals=1, thresholds=RATE_STEPS)

SERVICE_ACTIVITY = Panel(
    "service_activity", "Ngày nghỉ vì Nhân dân và ngày về thôn", "Weekend and village service activity",
    "Dossiers received on declared weekend service days (the counter open on a day off) and in village outreach "
    "sessions, per commune, over the 30 local days ending today: how many days were held, how many dossiers, "
    "and how many came from people with merit and social-protection beneficiaries (where the source says).",
    f"""SELECT commune_name AS `Xã/phường`, kind AS `Hình thức`, days AS `Số ngày`, received AS `Hồ sơ`,
       merit AS `Người có công`, social AS `Bảo trợ xã hội`
FROM ({with_commune_names(f'''SELECT commune_code, {SERVICE_NAMES} AS kind, uniqExact(day) AS days,
       sum(s.dossiers) AS received, sumIf(s.dossiers, beneficiary_group = 'người có công') AS merit,
       sumIf(s.dossiers, beneficiary_group = 'bảo trợ xã hội') AS social
FROM {T_SERVICE} AS s WHERE {LAST_30_DAYS} AND @scope(commune_code) GROUP BY commune_code, service''')})
ORDER BY received DESC, commune_code, kind""",
    "table", width=10, height=8)

_THIS_MONTH = f"month = toStartOfMonth({TODAY})"

SATISFACTION_TILE = Panel(
    "satisfaction_766", "766 · Mức độ hài lòng (§5.4)", "766 · Satisfaction (§5.4)",
    "100% − (share of dossiers finished overdue + share with a complaint or a bad rating, 1–2 of 5), over the "
    "dossiers finished this month, for the handling commune (Decision 766/QĐ-TTg, group 5; full score at 90%).",
    f"""SELECT greatest(0, 1 - (sum(overdue) + sum(complaint_or_bad_rating)) / nullIf(sum(finished), 0)) AS `Hài lòng`
FROM {T_SATISFACTION} WHERE {_THIS_MONTH} AND @scope(commune_code)""",
    "stat", unit="percentunit", width=4, decimals=1, thresholds=((None, "red"), (0.8, "orange"), (0.9, "green")))

SATISFACTION_RANKING = Panel(
    "satisfaction_ranking", "766 · Mức độ hài lòng theo xã/phường", "766 · Satisfaction per commune",
    "Each handling commune's 766 §5.4 satisfaction this month, lowest first, with its overdue and "
    "complaint-or-bad-rating counts and how many citizens rated; communes with nothing finished are left out.",
    f"""SELECT commune_name AS `Xã/phường`, satisfaction AS `Hài lòng`, attainment AS `Đạt (ngưỡng 90%)`,
       finished AS `Đã giải quyết`, overdue AS `Quá hạn`, complaint_or_bad_rating AS `Phản ánh, đánh giá kém`,
       rated AS `Đã đánh giá`
FROM ({with_commune_names(f"SELECT * FROM {T_SATISFACTION} WHERE {_THIS_MONTH} AND finished > 0 AND @scope(commune_code)")})
ORDER BY satisfaction ASC, commune_code LIMIT 30""",
    "bargauge", unit="percentunit", width=10, height=10, decimals=1,
    thresholds=((None, "red"), (0.8, "orange"), (0.9, "green")))

_DAYS = 7
_BACK = range(_DAYS - 1, -1, -1)
_INNER_CELLS = ", ".join(f"maxIfOrNull(p95_ms, day = {TODAY} - {back}) / 60000 AS d{back}" for back in _BACK)
_CELLS = ", ".join(f"d{back} AS `{'Hôm nay' if back == 0 else f'-{back} ngày'}`" for back in _BACK)
_LATE = f"""SELECT commune_code, {_INNER_CELLS}, sum(spooled) / sum(events) AS spooled_share,
       max(max_ms) / 60000 AS worst
FROM {T_LATE} WHERE day > {TODAY} - {_DAYS} AND day <= {TODAY} AND @scope(commune_code)
GROUP BY commune_code"""

LATE_DATA_MAP = Panel(
    "late_data_map", "Bản đồ dữ liệu đến muộn theo xã/phường", "Late-data map of communes",
    "For each commune and each of the last 7 local days: the 95th percentile, in minutes, of the delay between "
    "an event occurring at the desk and its arrival in the pipeline (empty: nothing arrived). A commune whose "
    "cells stay high has a weak network or unstable software; one that sends nothing while its counter is open "
    "is a different signal (the silent-commune alert). Also: the share of its events that came through a spool "
    "after an outage, and its worst delay, over the 7 days.",
    f"""SELECT commune_name AS `Xã/phường`, {_CELLS}, spooled_share AS `Qua hàng đợi`, worst AS `Trễ nhất (phút)`
FROM ({with_commune_names(_LATE)}) ORDER BY worst DESC, commune_code""",
    "table", unit="m", width=24, height=10, decimals=1,
    thresholds=((None, "green"), (15, "orange"), (120, "red")))

PANELS = (SAME_DAY_NO_APPOINTMENT, SERVICE_ACTIVITY, SATISFACTION_TILE, SATISFACTION_RANKING, LATE_DATA_MAP)
