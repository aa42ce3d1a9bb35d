"""How commands print rows: a rich table for people, TSV or JSON lines for scripts."""

from __future__ import annotations

import json

from rich.console import Console
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
