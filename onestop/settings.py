"""Typed settings, read from the environment (prefix ``ONESTOP_``) and validated at start-up.

Every process of the pipeline takes its configuration from here, so one set of
environment variables drives a laptop demo and a docker-compose deployment alike.
"""

from __future__ import annotations

import difflib
import logging
import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal, Mapping

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Admission defaults (kept here, not imported from onestop.admission, so settings load without the catalogue).
DEFAULT_FLOOR = date(2025, 7, 1)  # the two-tier local government and its commune one-stop centres
DEFAULT_IMPORT_FLOOR = date(2015, 1, 1)  # one-stop rules of Decision 09/2015/QĐ-TTg
EARLIEST_DATE = date(1971, 1, 1)  # onestop.events.EARLIEST: what the stores can hold
PREFIX = "ONESTOP_"
TEST_PREFIX = "ONESTOP_TEST_"  # read by the project's test suite (e.g. ONESTOP_TEST_CLICKHOUSE_URL), not by onestop
log = logging.getLogger(__name__)


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
    seq_gap_timeout_s: float = Field(
        3600.0, gt=0, description="Worker: how long (on the partition's clock) a dossier's later events wait for a "
                                  "missing earlier seq before the gap is skipped and dead-lettered as seq_gap_timeout.")
    result_ready_while_waiting: Literal["accept", "reject"] = Field(
        "accept", description="result_ready while a supplement or payment wait is open: accept it (the wait ends "
                              "at the finish) or reject it as an illegal transition.")
    sla_boundary: Literal["date", "instant"] = Field(
        "date", description="When a dossier turns overdue: 'date' compares calendar dates in Asia/Ho_Chi_Minh (the "
                            "legal sources' reading: overdue from the day after the due date), 'instant' compares timestamps.")
    calendar_override: Path | None = Field(None, description="Provincial calendar override file (closures, make-up days).")
    catalogue_file: Path | None = Field(None, description="Procedure catalogue CSV replacing the packaged one.")
    event_clock_quorum: int = Field(
        3, ge=1, le=100, description="Event clock: a partition's watermark is the N-th latest occurred_at it has seen, "
        "so fewer than N outlying events cannot move it (1 = the latest).")

    # Admission: the plausibility policy every entrance and reader applies (docs/domain.md, "Admission").
    occurred_at_max_ahead_s: float = Field(
        300.0, ge=0, description="Admission: how far (seconds) an event's occurred_at may lie after the receiver's "
        "clock (the gateway's, the importer's, the simulator's, or a Kafka record's timestamp).")
    occurred_at_floor: date = Field(
        DEFAULT_FLOOR, description="Admission: the earliest occurred_at (local date, Asia/Ho_Chi_Minh) accepted "
        "from the gateway, the simulator and any source other than the importer.")
    import_occurred_at_floor: date = Field(
        DEFAULT_IMPORT_FLOOR, description="Admission: the earliest occurred_at (local date) accepted from "
        "historical exports (onestop import; events whose source is importer:...).")
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
    sink_batch_size: int = Field(5000, ge=1, description="Records the ClickHouse writer gathers before it writes.")
    sink_linger_s: float = Field(0.25, gt=0, le=60, description=(
        "Longest a record waits in the ClickHouse writer's batch before it is written, so a quiet commune "
        "is not held back by a full one."))
    sink_retry_max_s: float = Field(30.0, gt=0, description=(
        "Longest pause between the ClickHouse writer's retries while the store is down."))

    # Alert router: dossier.alerts -> Alertmanager (docs/alerting.md)
    alertmanager_url: str = Field("http://127.0.0.1:9093", description="Alertmanager the alert router posts to (API v2).")
    router_group: str = Field("onestop-alert-router", description="Consumer group of the alert router.")
    router_resend_s: float = Field(
        60.0, gt=0, description="Alert router: how often every active alert is posted to Alertmanager again.")
    router_hold_s: float = Field(
        900.0, gt=0, description="Alert router: endsAt of a posted alert lies this far ahead, so Alertmanager resolves "
                                 "what the router stops re-posting; at least twice router_resend_s.")
    router_escalation: str = Field(
        "officer=0,commune_leaders=1,province=3", pattern=r"^[a-z_]+=\d+(,[a-z_]+=\d+)*$",
        description="Alert router: escalation steps, name=working days overdue from which the step is notified too; "
                    "the first step starts at 0 (the officer), thresholds rise.")
    router_retry_max_s: float = Field(
        30.0, gt=0, description="Alert router: longest wait between two attempts to reach Alertmanager.")
    router_batch: int = Field(500, ge=1, description="Alert router: most alerts in one post to Alertmanager.")

    # Observability
    metrics_port: int = Field(0, ge=0, description="prometheus-client port for this process; 0 disables it.")
    log_level: str = Field("INFO", description="Log level of every process.")

    # Province shown in reports and simulated by default (Hà Tĩnh).
    province_code: str = Field("42", pattern=r"^\d{2}$", description="Two-digit province code.")

    # Simulator (onestop simulate)
    simulate_seed: int = Field(42, description="Simulator: random seed; the same arguments and seed give "
                                               "byte-identical events.")
    simulate_speed: float = Field(0.0, ge=0, description="Simulator: simulated seconds per wall second; "
                                                         "0 = as fast as possible.")

    @field_validator("calendar_override", "catalogue_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        # docker-compose passes an unset optional file as "", which must mean "none", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_port(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {server!r}")
        return value

    @field_validator("occurred_at_floor", "import_occurred_at_floor")
    @classmethod
    def _floor_is_storable(cls, value: date) -> date:
        if value < EARLIEST_DATE:
            raise ValueError(f"must be {EARLIEST_DATE} or later: the stores hold nothing earlier")
        return value

    @model_validator(mode="after")
    def _router_holds_longer_than_it_resends(self) -> "Settings":
        if self.router_hold_s < 2 * self.router_resend_s:
            raise ValueError(f"router_hold_s ({self.router_hold_s}) must be at least twice router_resend_s "
                             f"({self.router_resend_s}), or an active alert may expire between two posts")
        steps = [int(step.split("=")[1]) for step in self.router_escalation.split(",")]
        if steps[0] != 0 or steps != sorted(steps):
            raise ValueError(f"router_escalation {self.router_escalation!r}: the first step starts at 0 working days "
                             "and the thresholds rise")
        return self

    @property
    def effective_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.home / 'chdb'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def env_var(field: str, settings_class: type[BaseSettings] = Settings) -> str:
    """The environment variable of a settings field, e.g. ``catalogue_file`` → ``ONESTOP_CATALOGUE_FILE``."""
    if field not in settings_class.model_fields:
        raise KeyError(f"{settings_class.__name__} has no field {field!r}")
    return f"{settings_class.model_config.get('env_prefix', '')}{field}".upper()


def known_variables(classes: Iterable[type[BaseSettings]] = ()) -> set[str]:
    """Every ``ONESTOP_*`` variable read by ``Settings`` and by the given settings classes."""
    return {env_var(name, cls) for cls in (Settings, *classes) for name in cls.model_fields}


def unknown_variables(environ: Mapping[str, str] | None = None,
                      classes: Iterable[type[BaseSettings]] = ()) -> dict[str, str | None]:
    """``ONESTOP_*`` variables that no settings class reads, each with the closest known name (or None)."""
    environ = os.environ if environ is None else environ
    known = sorted(known_variables(classes))
    out: dict[str, str | None] = {}
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(PREFIX) and upper not in known and not upper.startswith(TEST_PREFIX):
            close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
            out[name] = close[0] if close else None
    return out


def warn_unknown_variables(environ: Mapping[str, str] | None = None,
                           classes: Iterable[type[BaseSettings]] = ()) -> dict[str, str | None]:
    """Log a warning for each unknown ``ONESTOP_*`` variable: a misspelt one is otherwise silently ignored."""
    unknown = unknown_variables(environ, classes)
    for name, close in unknown.items():
        hint = f"; did you mean {close}?" if close else ""
        log.warning("environment variable %s is not a setting of onestop and is ignored%s "
                    "(`onestop config` lists them all)", name, hint)
    return unknown


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
