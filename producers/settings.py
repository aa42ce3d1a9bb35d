"""Settings of the Kafka publisher and its on-disk spool, read from ``ONESTOP_PUBLISHER_*`` variables.

Kept apart from ``onestop.settings.Settings`` (bootstrap servers, topics, home
directory), which the publisher also reads: only the publisher's own buffering,
time-outs and spool are configured here. See docs/publisher.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from onestop.settings import Settings

MIB = 1024 * 1024
FsyncPolicy = Literal["always", "interval", "never"]


class PublisherSettings(BaseSettings):
    """Configuration of ``producers.publisher.Publisher``. Each field maps to ``ONESTOP_PUBLISHER_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ONESTOP_PUBLISHER_", extra="ignore")

    spool_dir: Path | None = Field(
        None, description="Directory of the on-disk spools (one sub-directory per client_id). "
        "Unset = ONESTOP_HOME/spool.")
    fsync: FsyncPolicy = Field(
        "always", description="When spooled records reach the disk: 'always' = before publish() returns "
        "(publish_many: once per call); 'interval' = at most fsync_interval_s later; 'never' = left to the OS.")
    fsync_interval_s: float = Field(0.2, gt=0, description="Longest delay of an fsync under the 'interval' policy.")
    segment_bytes: int = Field(64 * MIB, ge=4096, description="A spool segment file is rotated beyond this size.")
    buffer_bytes: int = Field(
        16 * MIB, ge=64 * 1024, description="Most bytes of unacknowledged records held in memory; beyond it "
        "publish() waits up to max_block_ms for acknowledgements, then spools.")
    max_block_ms: int = Field(
        2000, ge=1, description="Longest wait of publish() for buffer room or topic metadata before it spools.")
    stall_timeout_s: float = Field(
        5.0, gt=0, description="A record not acknowledged within this many seconds means the broker is "
        "unreachable: everything unacknowledged is copied to the spool and new records go there too.")
    delivery_timeout_ms: int = Field(
        86_400_000, ge=1000, description="kafka-python's delivery.timeout.ms: how long the producer keeps "
        "retrying a record it holds. Long on purpose: a record that was in flight when Kafka went away is "
        "also in the spool, and only a retry by the same producer is deduplicated by the broker; a record "
        "the producer gives up on is re-sent from the spool and may then be stored twice.")
    request_timeout_ms: int = Field(15_000, ge=100, description="kafka-python's request.timeout.ms.")
    connect_timeout_ms: int = Field(
        5000, ge=100, description="How long creating a producer may wait for the broker (bootstrap_timeout_ms).")
    reconnect_backoff_max_ms: int = Field(
        2000, ge=10, description="Longest back-off between reconnection attempts of the producer.")
    retry_backoff_s: float = Field(0.5, gt=0, description="First wait between two drain attempts while Kafka is down.")
    retry_backoff_max_s: float = Field(10.0, gt=0, description="Longest wait between two drain attempts.")
    drain_batch: int = Field(1000, ge=1, description="Spooled records sent per drain round before waiting for acks.")
    close_timeout_s: float = Field(
        30.0, ge=0, description="close() waits this long for the spool to drain; what is left stays on disk "
        "for the next publisher with the same client_id.")

    def spool_root(self, settings: Settings) -> Path:
        return (self.spool_dir or settings.home / "spool").expanduser()
