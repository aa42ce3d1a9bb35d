"""Settings of the ingest gateway, read from ``ONESTOP_GATEWAY_*`` environment variables.

Kept apart from ``onestop.settings.Settings`` (Kafka, topics, ...), which the
gateway also reads: only the HTTP front door is configured here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class GatewaySettings(BaseSettings):
    """Configuration of ``onestop gateway``. Each field maps to ``ONESTOP_GATEWAY_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ONESTOP_GATEWAY_", extra="ignore")

    host: str = Field("127.0.0.1", description="Bind address. Loopback by default: put a TLS proxy in front.")
    port: int = Field(8088, ge=0, le=65535, description="TCP port of the HTTP API (0 = any free port).")
    tokens_file: Path | None = Field(
        None, description="YAML/JSON file: commune_code -> token hash (see `onestop gateway hash-token`).")
    max_body_bytes: int = Field(MIB, ge=1024, description="Largest accepted request body, in bytes (413 above).")
    max_batch_size: int = Field(1000, ge=1, description="Most events in one POST /v1/events batch (413 above).")
    dedup_capacity: int = Field(
        100_000, ge=1, description="How many recent event_ids the gateway remembers to answer repeats as duplicates.")
    dedup_file: Path | None = Field(
        None, description="Where the recent event_ids are saved at shutdown and loaded at start; unset = memory only.")
    publish_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for Kafka to acknowledge a request's events before answering 503.")
