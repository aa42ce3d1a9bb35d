"""Readers of one-stop exports for the importer: CSV (header row) and JSONL (one object per line).

Both yield ``Row``s: the row number, its raw bytes (for the dead letter), its
fields keyed by canonical name (see ``COLUMNS``) or the
reason it cannot be read, and how many bytes of the file were consumed (for
the progress bar). Column names are matched case-insensitively.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import msgspec

# Contract field (or helper) -> accepted column names, first = the national portal's name. Case-insensitive.
COLUMNS: dict[str, tuple[str, ...]] = {
    "dossier_id": ("MaHoSo",),
    "procedure_code": ("MaTTHC",),
    "status": ("TrangThaiHoSo", "TrangThai"),
    "channel": ("KenhThucHien",),
    "commune_code": ("MaDonVi", "MaXa", "MaDonViTiepNhan"),
    "handling_commune_code": ("MaDonViXuLy",),
    "at": ("ThoiDiemXuLy",),
    "submitted_at": ("NgayNopHoSo",),
    "accepted_at": ("NgayTiepNhan",),
    "due_at": ("NgayHenTra",),
    "finished_at": ("NgayKetThucXuLy",),
    "returned_at": ("NgayTra",),
    "step": ("PhongBanXuLy", "DonViXuLy"),
    "reason": ("NoiDungXuLy", "LyDo"),
}
REQUIRED_COLUMNS = ("dossier_id", "status")
ALIASES = {name.casefold(): key for key, names in COLUMNS.items() for name in names}


def column_name(key: str) -> str:
    """The national portal's name of a canonical field (the first accepted column name)."""
    return COLUMNS[key][0]


class RowError(ValueError):
    """A row that cannot become an event: ``code`` for machines, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ImportFileError(RuntimeError):
    """The file as a whole cannot be imported (unreadable, no header, a required column missing)."""


@dataclass(frozen=True)
class Row:
    number: int  # CSV: record number with the header as row 1; JSONL: line number
    raw: bytes  # the row's bytes as in the file, without the line terminator
    fields: dict[str, str] | None  # canonical field -> text; None if unreadable
    error: RowError | None
    offset: int  # bytes of the file consumed so far (for progress)


def canonical(names: list[str]) -> dict[int, str]:
    """Column index -> canonical field, for the columns this importer knows; checks required ones."""
    mapping = {i: ALIASES[n.strip().casefold()] for i, n in enumerate(names) if n.strip().casefold() in ALIASES}
    missing = [column_name(k) for k in REQUIRED_COLUMNS if k not in mapping.values()]
    if missing:
        raise ImportFileError(f"missing column(s) {', '.join(missing)}; columns found: {', '.join(names)}")
    return mapping


class _Lines:
    """Feeds text lines to csv.reader while keeping each record's raw bytes and the byte position."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.offset, self.raw = handle, 0, bytearray()

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        line = self.handle.readline()
        if not line:
            raise StopIteration
        text = line.decode("utf-8-sig" if self.offset == 0 else "utf-8", errors="replace")
        self.offset += len(line)
        self.raw += line
        return text

    def take(self) -> bytes:
        raw, self.raw = bytes(self.raw).rstrip(b"\r\n"), bytearray()
        return raw


def read_csv(handle: BinaryIO) -> Iterator[Row]:
    lines = _Lines(handle)
    first = next(lines, None)
    if first is None:
        raise ImportFileError("the file is empty")
    delimiter = max(",;\t", key=first.count)  # Vietnamese Excel often saves with ';'
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter)
    header = next(reader)
    mapping = canonical(header)
    lines.take()
    for number in itertools.count(2):
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(number, lines.take(), None, RowError("malformed_row", f"unreadable CSV: {exc}"), lines.offset)
            continue
        raw = lines.take()
        if values:  # blank lines are skipped
            yield _csv_row(number, raw, values, header, mapping, lines.offset)


def _csv_row(number: int, raw: bytes, values: list[str], header: list[str], mapping: dict[int, str],
             offset: int) -> Row:
    error = None
    if len(values) != len(header):
        error = RowError("malformed_row", f"{len(values)} fields where the header has {len(header)}")
    elif any("\ufffd" in v for v in values):
        error = RowError("malformed_row", "the row is not valid UTF-8")
    if error:
        return Row(number, raw, None, error, offset)
    return Row(number, raw, {key: values[i] for i, key in mapping.items()}, None, offset)


def read_jsonl(handle: BinaryIO) -> Iterator[Row]:
    offset = 0
    for number, line in enumerate(handle, start=1):
        offset += len(line)
        raw = line.rstrip(b"\r\n")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.strip():
            yield _jsonl_row(number, raw, offset)


def _jsonl_row(number: int, raw: bytes, offset: int) -> Row:
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return Row(number, raw, None, RowError("malformed_json", str(exc)), offset)
    except RecursionError:
        return Row(number, raw, None, RowError("nesting_too_deep", "the line nests deeper than JSON can be read"),
                   offset)
    if not isinstance(obj, dict):
        return Row(number, raw, None, RowError("not_an_object", "a line must be one JSON object"), offset)
    fields: dict[str, str] = {}
    for name, value in obj.items():
        key = ALIASES.get(str(name).strip().casefold())
        if key is None:
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            return Row(number, raw, None, RowError("invalid_field", f"{name}: expected a string or a number, "
                                                   f"got {type(value).__name__}"), offset)
        fields[key] = "" if value is None else str(value)
    return Row(number, raw, fields, None, offset)


