"""How commands print rows (a rich table for people, TSV or JSON lines for scripts) and write generated files."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
import typer
from rich.table import Table

console = Console()


def print_rows(columns: list[str], rows: list[tuple], fmt: str = "table", title: str | None = None) -> None:
    if fmt == "tsv":
        print("\t".join(columns))
        for r in rows:
            print("\t".join("" if v is None else str(v) for v in r))
    elif fmt == "jsonl":
        for r in rows:
            print(json.dumps(dict(zip(columns, r)), default=str, ensure_ascii=False))
    else:
        table = Table(*columns, title=title)
        for r in rows:
            table.add_row(*("" if v is None else str(v) for v in r))
        console.print(table)


def write_or_check(out: Path, text: str, *, check: bool, command: str) -> None:
    """Write a generated file, or with ``check`` exit 1 if the file on disk differs from ``text``."""
    err = Console(stderr=True)
    if check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            err.print(f"[red]{out} is out of date; run `{command}`[/red]")
            raise typer.Exit(1)
        err.print(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    err.print(f"wrote {out}")
