"""``onestop dlq show``: the most recent dead letters of ``dossier.dlq``, as a table or JSON lines.

Reads without a consumer group (nothing is committed): on each partition it
seeks to ``end - N`` (``end - scan`` when filtering by reason), reads up to the
end, merges the partitions by ``rejected_at`` and keeps the newest N, printed
oldest first like a log tail. The record format and the reason codes are in
docs/dlq.md.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from onestop import dlq
from onestop.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")
out = Console()
err = Console(stderr=True)
VN = ZoneInfo("Asia/Ho_Chi_Minh")
PREVIEW_CHARS = 80


class DlqReadError(RuntimeError):
    """The dead-letter topic could not be read (no broker, no topic, time-out)."""


@dataclass(frozen=True)
class Found:
    """One record of the dead-letter topic; ``record`` is None if it is not a valid DeadLetter."""

    partition: int
    offset: int
    timestamp: datetime  # rejected_at, else the Kafka record's timestamp
    record: dlq.DeadLetter | None
    raw: bytes
    problem: str | None = None


def _found(partition: int, offset: int, kafka_ms: int, raw: bytes) -> Found:
    try:
        record = dlq.decode(raw)
    except Exception as exc:  # msgspec errors: a producer wrote something else to the topic
        stamp = datetime.fromtimestamp(kafka_ms / 1000, timezone.utc)
        return Found(partition, offset, stamp, None, raw, f"not a DeadLetter record: {exc}")
    stamp = record.rejected_at if record.rejected_at.tzinfo else record.rejected_at.replace(tzinfo=timezone.utc)
    return Found(partition, offset, stamp, record, raw)


def recent_dead_letters(settings: Settings, limit: int, *, reason: str | None = None, scan: int = 10_000,
                        timeout: float = 20.0) -> list[Found]:
    """The newest ``limit`` records of the DLQ (of one reason code, if given), oldest first."""
    from kafka import KafkaConsumer, TopicPartition

    window = limit if reason is None else max(limit, scan)
    try:
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=None,
                                 enable_auto_commit=False, client_id="onestop-dlq-show",
                                 bootstrap_timeout_ms=int(timeout * 500), request_timeout_ms=int(timeout * 1000))
    except Exception as exc:
        raise DlqReadError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(settings.topic_dlq)
        if not partitions:
            raise DlqReadError(f"topic {settings.topic_dlq} does not exist on {settings.kafka_bootstrap}")
        tps = [TopicPartition(settings.topic_dlq, p) for p in sorted(partitions)]
        found = _read_tail(consumer, tps, window, timeout)
    finally:
        consumer.close()
    if reason is not None:
        found = [f for f in found if f.record is not None and f.record.reason_code == reason]
    found.sort(key=lambda f: (f.timestamp, f.partition, f.offset))
    return found[-limit:] if limit > 0 else []


def _read_tail(consumer: Any, tps: list, window: int, timeout: float) -> list[Found]:
    begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, max(begin[tp], end[tp] - window))
    found: list[Found] = []
    deadline = time.monotonic() + timeout
    while any(consumer.position(tp) < end[tp] for tp in tps):
        if time.monotonic() > deadline:
            raise DlqReadError(f"could not read {tps[0].topic} within {timeout:g}s")
        for tp, records in consumer.poll(timeout_ms=500).items():
            found.extend(_found(tp.partition, r.offset, r.timestamp, r.value) for r in records
                         if r.offset < end[tp])
    return found


def preview(data: bytes, width: int = PREVIEW_CHARS) -> str:
    """The start of the original bytes as one printable line."""
    text = data.decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def as_json(f: Found) -> dict[str, Any]:
    base = {"partition": f.partition, "offset": f.offset, "rejected_at": f.timestamp.isoformat(),
            "rejected_at_local": f.timestamp.astimezone(VN).isoformat()}
    if f.record is None:
        return {**base, "reason_code": None, "problem": f.problem, "raw_preview": preview(f.raw)}
    r = f.record
    return {**base, "reason_code": r.reason_code, "message": r.message, "source": r.source,
            "dossier_id": r.dossier_id, "event_id": r.event_id, "original_b64": r.original_b64,
            "original_preview": preview(r.original)}


def render(found: list[Found], title: str) -> Table:
    table = Table(title=title)
    table.add_column("time (ICT)", no_wrap=True)
    table.add_column("reason_code", no_wrap=True)
    table.add_column("source", overflow="fold")
    table.add_column("dossier_id", overflow="fold")
    table.add_column("message", ratio=2, overflow="fold")
    table.add_column("original", ratio=1, overflow="fold")
    for f in found:
        when = f.timestamp.astimezone(VN).strftime("%Y-%m-%d %H:%M:%S")
        if f.record is None:
            table.add_row(when, Text("(unreadable)", style="red"), "", "", Text(f.problem or ""),
                          Text(preview(f.raw, 40)))
            continue
        r = f.record
        table.add_row(when, Text(r.reason_code, style="bold"), Text(r.source), Text(r.dossier_id or ""),
                      Text(r.message), Text(preview(r.original, 40)))
    return table


@app.callback()
def _quiet_client() -> None:
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # errors are reported by this command


@app.command()
def show(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many of the most recent records to show."),
    reason: Optional[str] = typer.Option(None, "--reason", "-r", help="Only this reason_code (e.g. malformed_json)."),
    scan: int = typer.Option(10_000, "--scan", min=1,
                             help="With --reason: how many recent records per partition to search."),
    as_json_lines: bool = typer.Option(False, "--json", help="One JSON object per line, for scripts."),
) -> None:
    """Show the most recent dead letters: when, why, from whom, and the start of the rejected bytes."""
    settings = get_settings()
    try:
        found = recent_dead_letters(settings, limit, reason=reason, scan=scan)
    except DlqReadError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if as_json_lines:
        for f in found:
            print(json.dumps(as_json(f), ensure_ascii=False))
        return
    what = f"reason {reason}" if reason else "all reasons"
    out.print(render(found, f"{settings.topic_dlq}: {len(found)} most recent ({what})"))
    if not found:
        err.print("no dead letters" + (f" with reason {reason}" if reason else ""))
