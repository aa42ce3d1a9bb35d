"""Typed settings, read from the environment (prefix ``ONESTOP_``) and validated at start-up.

Every process of the pipeline takes its configuration from here, so one set of
environment variables drives a laptop demo and a docker-compose deployment alike.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

def _default_home() -> Path:
    return Path.home() / ".local" / "state" / "onestop-ioc"


class Settings(BaseSettings):
    """Configuration of every onestop process. Each field maps to ``ONESTOP_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ONESTOP_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="State directory: chDB store, broker data, pids, logs.")
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "onestop-ioc",
        description="Download cache (Kafka jars from Maven Central).",
    )

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port].")
    kafka_port: int = Field(9092, description="Port of the local development broker (onestop kafka start).")
    kafka_controller_port: int = Field(9093, description="KRaft controller port of the local broker.")
    kafka_version: str = Field("4.1.1", description="Apache Kafka version fetched from Maven Central.")
    partitions: int = Field(12, ge=1, description="Partition count of every pipeline topic.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of the pipeline topics.")
    topic_events: str = Field("dossier.events", description="Dossier lifecycle events, keyed by dossier_id; kept forever.")
    topic_dlq: str = Field("dossier.dlq", description="Dead letters: rejected input with its reason and source.")
    topic_state: str = Field("dossier.state", description="Current state of every dossier (compacted).")
    topic_metrics: str = Field("ioc.metrics", description="Counter batches of the worker (backlog, throughput, on-time).")
    topic_alerts: str = Field("dossier.alerts", description="SLA alerts: due soon, overdue, escalation, cleared.")
    topic_ticks: str = Field("dossier.ticks", description="Clock ticks for the SLA watch, co-partitioned with events.")

    # Faust worker
    app_id: str = Field("onestop-ioc", description="Faust application id (consumer group and changelog prefix).")
    web_host: str = Field("127.0.0.1", description="Bind address of the worker's web server.")
    web_port: int = Field(6066, ge=0, description="Port of the worker's web server; 0 disables it.")
    clock: Literal["wall", "event"] = Field(
        "wall", description="What 'overdue' is judged against: wall (live) or event (replays, simulations).")
    allowed_lateness_s: float = Field(300.0, ge=0, description="Event clock: how late an event may arrive (seconds).")
    live_lag: int = Field(500, ge=0, description="Wall clock: a partition further behind than this holds its alerts.")
    tick_interval_s: float = Field(1.0, gt=0, description="Wall clock: how often the SLA watch looks at the deadlines.")
    worker_batch: int = Field(1000, ge=1, le=4096, description="Worker: most records handled (and written) as one batch.")
    worker_batch_within_s: float = Field(
        0.05, gt=0, description="Worker: how long a batch waits to fill up before it is handled anyway (seconds).")
    worker_gc_threshold: str = Field(
        "50000,20,100", pattern=r"^(\d+,\d+,\d+)?$",
        description="Worker: Python's gc thresholds (gen0,gen1,gen2); empty keeps Python's 700,10,10. The worker keeps "
                    "a large long-lived heap (counters, deadline index), which the default rescans thousands of times a minute.")
    publish_interval_s: float = Field(1.0, gt=0, description="How often changed counters go to ioc.metrics.")
    escalate_after_working_days: int = Field(3, ge=1, description="Overdue this many working days: escalation alert.")
    due_soon_hours: float = Field(8.0, gt=0, description="Due-soon horizon in working hours (8 = one working day).")
    calendar_override: Path | None = Field(None, description="Provincial calendar override file (closures, make-up days).")
    catalogue_file: Path | None = Field(None, description="Procedure catalogue CSV replacing the packaged one.")
    service_calendar_file: Path | None = Field(
        None, description="Service calendar CSV (counter hours, weekend and village service days, no-appointment "
                          "days, closures) replacing the packaged one.")

    # ClickHouse
    clickhouse_dsn: str = Field(
        "",
        description="ClickHouse DSN. Empty means embedded chDB under ONESTOP_HOME/chdb; "
        "'http://user:pass@host:8123' means a server.",
    )
    clickhouse_database: str = Field("ioc", description="ClickHouse database of the pipeline tables.")
    clickhouse_password: SecretStr | None = Field(None, description="Password for a ClickHouse server, if not in the DSN.")

    # Sink
    sink_group: str = Field("onestop-sink", description="Consumer group of the ClickHouse writer.")
    sink_batch_size: int = Field(5000, ge=1, description="Maximum events per ClickHouse insert.")

    # Observability
    metrics_port: int = Field(0, ge=0, description="prometheus-client port for this process; 0 disables it.")
    log_level: str = Field("INFO", description="Log level of every process.")

    # Province shown in reports and simulated by default (Hà Tĩnh).
    province_code: str = Field("42", pattern=r"^\d{2}$", description="Two-digit province code.")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {server!r}")
        return value

    @property
    def effective_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.home / 'chdb'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_env(settings: Settings) -> dict[str, str]:
    """``ONESTOP_*`` variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"ONESTOP_{name.upper()}"] = str(value)
    return env
