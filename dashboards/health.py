"""Pipeline health, from Prometheus: lag, throughput, dead letters, sink freshness, silent communes.

The expressions read the metrics the pipeline's processes export with
prometheus-client (docs/alerting.md lists them): consumer lag per group,
records consumed, records handled by the worker, dead letters by reason, the
sink's writes, and the last event time of every commune.
"""

from __future__ import annotations

from dashboards.model import Panel

SILENT_AFTER_S = 2 * 3600  # a commune that sent nothing for two hours of a working day is worth a look

LAG = Panel(
    "consumer_lag", "Độ trễ xử lý (bản ghi)", "Consumer lag (records)",
    "Records between each consumer group's position and the end of its topics: the worker, the ClickHouse "
    "writer and the alert router. A lag that keeps growing means the panels are falling behind.",
    "sum by (group) (onestop_consumer_lag_records)", "timeseries", width=12, height=8, source="prometheus",
    time_series=True, legend="{{group}}", extra_sql=(("max(onestop_sink_lag_events)", "sink"),))

THROUGHPUT = Panel(
    "pipeline_throughput", "Thông lượng (bản ghi/giây)", "Throughput (records/s)",
    "Records handled per second by the worker (by outcome) and rows written per second by the ClickHouse writer.",
    "sum by (outcome) (rate(onestop_worker_events_total[$__rate_interval]))", "timeseries", unit="ops",
    width=12, height=8, source="prometheus", time_series=True, legend="worker {{outcome}}",
    extra_sql=(("sum by (table) (rate(onestop_sink_rows_total[$__rate_interval]))", "sink {{table}}"),))

DLQ = Panel(
    "dlq_by_reason", "Bản ghi lỗi (DLQ) theo lý do", "Dead letters by reason",
    "Records sent to dossier.dlq per interval, by reason code: malformed JSON, contract violations, illegal "
    "lifecycle transitions. Each one is an event someone has to look at (onestop dlq show).",
    "sum by (reason) (increase(onestop_dlq_records_total[$__rate_interval]))", "timeseries", width=12, height=8,
    source="prometheus", time_series=True, legend="{{reason}}")

SINK_FRESHNESS = Panel(
    "sink_freshness", "Độ mới dữ liệu ClickHouse", "Sink freshness",
    "Seconds since the ClickHouse writer last wrote a batch, and its 95th-percentile write time. The panels "
    "are at most this old.",
    "time() - max(onestop_sink_last_write_timestamp_seconds)", "timeseries", unit="s", width=12, height=8,
    source="prometheus", time_series=True, legend="since last write",
    extra_sql=(("histogram_quantile(0.95, sum by (le) (rate(onestop_sink_write_seconds_bucket[$__rate_interval])))",
                "p95 write"),))

SILENT = Panel(
    "silent_communes", "Xã/phường không gửi dữ liệu", "Silent communes",
    f"Communes whose last event is older than {SILENT_AFTER_S // 3600} hours, by commune code, and how long "
    "ago it was. Outside working hours silence is normal.",
    f"sort_desc(time() - onestop_commune_last_event_timestamp_seconds > {SILENT_AFTER_S})", "table", unit="s",
    width=24, height=8, source="prometheus", legend="{{commune}}")

PANELS = (LAG, THROUGHPUT, DLQ, SINK_FRESHNESS, SILENT)
