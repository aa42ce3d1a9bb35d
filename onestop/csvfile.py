"""Data files a province edits in a spreadsheet (the procedure catalogue, the service calendar), read as CSV.

What both files share: UTF-8 with or without a BOM, a header row naming known
columns, no surplus cells, and an empty cell meaning "not given". Every problem
is raised as the caller's error type, with the file and the line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence

FileError = Callable[[str, "int | None", str], Exception]  # (source, line, problem) -> the error to raise


def rows(raw: bytes, source: str, *, required: Sequence[str], known: Sequence[str],
         error: FileError) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, the row's non-empty cells by column) for every data row of the file."""
    try:
        text = raw.decode("utf-8-sig")  # spreadsheets often save UTF-8 with a BOM
    except UnicodeDecodeError as exc:
        raise error(source, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_header(reader.fieldnames, source, required, known, error)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise error(source, reader.line_num, f"unreadable CSV: {exc}") from exc
        if None in row:  # DictReader puts surplus cells under the None key
            raise error(source, reader.line_num, f"{len(row[None])} more cell(s) than the header has columns")
        yield reader.line_num, {k.strip(): v for k, v in row.items() if v is not None and v.strip() != ""}


def _check_header(fieldnames: Sequence[str] | None, source: str, required: Sequence[str], known: Sequence[str],
                  error: FileError) -> None:
    if not fieldnames:
        raise error(source, 1, "empty file: expected a header row")
    names = [n.strip() for n in fieldnames]
    missing = [c for c in required if c not in names]
    unknown = [n for n in names if n not in known]
    if missing:
        raise error(source, 1, f"missing column(s): {', '.join(missing)}")
    if unknown:
        raise error(source, 1, f"unknown column(s): {', '.join(unknown)}; known: {', '.join(known)}")
