"""SQL pieces the panels share: the IOC's idea of "now", "today", the last 30 days, and display names.

"Now" is the end of the dashboard's time range (``$__toTime``), never the
server's clock: Grafana's range ends at now, and the embedded view ends it at
the store's clock, which for a replay or a simulation is the event clock. So a
panel shows what was true at the end of the range it is given.
"""

from __future__ import annotations

from functools import lru_cache

from onestop.catalogue import default_catalogue
from sinks import history_schema, schema

TZ = "'Asia/Ho_Chi_Minh'"
NOW = "$__toTime"
TODAY = f"toDate({NOW}, {TZ})"
TODAY_START = f"toStartOfDay({NOW}, {TZ})"
# The 30 local days ending today (today included), as Form 06 periods are counted in dates.
LAST_30_DAYS = f"period_start > {TODAY} - 30 AND period_start <= {TODAY}"
ON_TIME = "('before_due', 'on_due')"
# The event that finishes a dossier after acceptance (DossierState.finished_at).
FINISHING = "('result_ready', 'refused', 'processing_stopped', 'withdrawal_requested')"
CHANNELS = {1: "Trực tiếp", 2: "Trực tuyến", 3: "Bưu chính công ích"}
SLA_NAMES = {"within_due": "Trong hạn", "due_soon": "Sắp đến hạn", "overdue": "Quá hạn"}
AGE_ORDER = "['0-1d', '1-3d', '3-7d', '7-15d', '15-30d', '>30d']"
ALERT_NAMES = {"due_soon": "Sắp đến hạn", "overdue": "Quá hạn", "escalation": "Báo cáo lãnh đạo",
               "cleared": "Đã xử lý"}

T_BACKLOG = "{db}." + schema.BACKLOG
T_BACKLOG_NOW = "{db}." + schema.BACKLOG_NOW
T_THROUGHPUT = "{db}." + schema.THROUGHPUT
T_ONTIME = "{db}." + schema.ONTIME
T_ALERTS = "{db}." + schema.ALERTS
T_EVENTS = "{db}." + schema.EVENTS
T_COMMUNES = "{db}." + schema.COMMUNES
T_DOSSIERS = "{db}." + history_schema.DOSSIERS_NOW


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def mapping(column: str, names: dict, default: str | None = None) -> str:
    """``transform`` of a column's codes into display names."""
    keys = ", ".join(literal(str(k)) if isinstance(k, str) else str(k) for k in names)
    values = ", ".join(literal(v) for v in names.values())
    fallback = default if default is not None else f"toString({column})"
    return f"transform({column}, [{keys}], [{values}], {fallback})"


@lru_cache(maxsize=1)
def procedure_names(max_length: int = 48) -> dict[str, str]:
    """Short Vietnamese names of the catalogue's procedures (the panels have no room for the full title)."""
    names = {}
    for procedure in default_catalogue():
        name = procedure.name
        names[procedure.code] = name if len(name) <= max_length else name[: max_length - 1].rstrip() + "…"
    return names


def procedure_name(column: str = "procedure_code") -> str:
    return mapping(column, procedure_names())



def with_commune_names(inner: str, code: str = "commune_code") -> str:
    """``inner`` (a subquery with a ``code`` column) joined to the communes table for their names."""
    return (f"SELECT ifNull(nullIf(c.name, ''), q.{code}) AS commune_name, q.* FROM ({inner}) AS q "
            f"LEFT JOIN (SELECT code, any(name) AS name FROM {T_COMMUNES} GROUP BY code) AS c ON c.code = q.{code}")
