"""``onestop dlq show``: the most recent dead letters of ``dossier.dlq``, as a table or JSON lines.

The reading is :mod:`ops.dlq_tail`; the record format and the reason codes are in docs/dlq.md.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from onestop.settings import get_settings
from ops.dlq_tail import DlqReadError, Found, recent_dead_letters

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")
out = Console()
err = Console(stderr=True)
VN = ZoneInfo("Asia/Ho_Chi_Minh")
PREVIEW_CHARS = 80


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
