"""Read-only access to the store: one statement at a time, read statements only, results as Arrow batches.

Two layers keep the store unharmed, whoever sends the SQL:

1. **The engine refuses writes.** Every query runs on a connection with
   ClickHouse's own ``readonly = 1``: ``INSERT``, ``ALTER``, ``DROP``,
   ``CREATE``, ``OPTIMIZE``, ``TRUNCATE``, table functions that reach files
   or URLs, and any settings change (``SET``, a ``SETTINGS`` clause, including
   one that tries to lift ``readonly`` itself) fail with code 164 (READONLY).
2. **The statement must be a read.** ClickHouse's parser
   (``formatQuerySingleLine``) rejects a string with several statements, and
   the parsed statement must be a ``SELECT``, ``WITH``, ``SHOW``,
   ``DESCRIBE``, ``EXPLAIN`` or ``EXISTS``. What runs is the statement as the
   parser wrote it back, so nothing but the checked statement can run. This catches what ``readonly``
   lets through: ``SYSTEM STOP MERGES``, ``KILL QUERY`` and ``INTO OUTFILE``
   (which writes a file as the store's process). A ``FORMAT`` clause is
   refused too: the result always travels as Arrow and the caller picks the
   output format.

``ChdbReader`` reads an embedded chDB store in this process; ``ServerReader``
a ClickHouse server through clickhouse-connect. Both stream: rows arrive in
blocks, so memory stays flat however large the result.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any, Iterator, Mapping, Protocol

import pyarrow as pa

from sinks.clickhouse import StoreError

READONLY_CODE = 164
READ_KINDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "EXPLAIN", "EXISTS")
ROWS_PER_BATCH = 65_536
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"")
_MULTI = "Multi-statements are not allowed"


class ReadRefused(StoreError):
    """The statement would change the store or its settings; nothing was run."""


class Reader(Protocol):
    """Where read-only queries go: an embedded store, its owner process, or a server."""

    where: str

    def stream(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """A context manager giving a ``pyarrow.RecordBatchReader`` over the result."""

    def close(self) -> None: ...


def literal(text: str) -> str:
    """A ClickHouse string literal: inside single quotes only the backslash and the quote are special."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_statement(formatted: str) -> None:
    """Refuse what ``readonly`` does not: statements other than reads, INTO OUTFILE, FORMAT."""
    words = formatted.split(None, 1)
    kind = words[0].upper() if words else ""
    if kind not in READ_KINDS:
        raise ReadRefused(f"refused: {kind or 'an empty statement'} is not a read; this path is read-only and "
                          f"answers {', '.join(READ_KINDS)} statements")
    bare = _QUOTED.sub("''", formatted)  # the parser writes keywords in capitals, identifiers as given
    if re.search(r"\bINTO OUTFILE\b", bare):
        raise ReadRefused("refused: INTO OUTFILE would write a file; use --out or `onestop export` instead")
    if re.search(r"\bFORMAT \w+$", bare):
        raise ReadRefused("refused: leave out the FORMAT clause; choose the output with --format")


def store_error(exc: Exception) -> StoreError:
    """The engine's refusal of a write or a settings change as ReadRefused; any other failure as StoreError."""
    message = str(exc)
    at = message.find("Code: ")
    message = message[at:].strip() if at >= 0 else message.strip()
    if f"Code: {READONLY_CODE}." in message or "(READONLY)" in message:
        return ReadRefused(f"refused by the store (read-only): {message}")
    if _MULTI in message:
        return ReadRefused("refused: one statement at a time")
    return StoreError(f"query failed: {message}")


def chdb_path(dsn: str) -> str:
    """The data directory of a ``chdb://`` DSN, spelled as clickhouse-connect spells it to the engine."""
    if not dsn.startswith("chdb://"):
        raise ValueError(f"not a chDB DSN: {dsn}")
    return os.path.realpath(dsn[len("chdb://"):])


class ChdbReader:
    """Read-only queries on the embedded engine of this process (which must own the store, or be alone)."""

    def __init__(self, path: str) -> None:
        import chdb

        self.path = path
        self.where = f"chDB store {path}"
        try:
            self.connection = chdb.connect(path)
        except Exception as exc:  # chDB raises RuntimeError when another process holds the directory
            raise StoreLocked(f"cannot open the chDB store {path}: {exc}") from exc
        self.connection.query("SET readonly = 1")

    def statement(self, sql: str) -> str:
        """The statement as ClickHouse's parser reads it; refused unless it is one read statement."""
        try:
            result = self.connection.query(f"SELECT formatQuerySingleLine({literal(sql)})", "TabSeparatedRaw")
        except Exception as exc:
            raise store_error(exc) from None
        formatted = result.bytes().decode("utf-8").strip()
        check_statement(formatted)
        return formatted

    @contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Iterator[pa.RecordBatchReader]:
        sql = self.statement(sql)  # what runs is exactly the one statement that was checked
        params = {k: query_parameter(v) for k, v in (parameters or {}).items()}
        try:
            result = self.connection.send_query(sql, "Arrow", params=params)
            reader = result.record_batch(rows_per_batch=ROWS_PER_BATCH)
        except Exception as exc:
            raise store_error(exc) from None
        try:
            if not reader.schema.names:  # an empty result streams no schema; ask for it once more
                reader = self._empty(sql, params)
            yield _guarded(reader)
        finally:
            result.close()

    def _empty(self, sql: str, params: dict[str, str]) -> pa.RecordBatchReader:
        raw = self.connection.query(sql, "ArrowStream", params=params).bytes()
        return pa.ipc.open_stream(raw) if raw else pa.RecordBatchReader.from_batches(pa.schema([]), [])

    def close(self) -> None:
        self.connection.close()


class StoreLocked(StoreError):
    """Another process holds the embedded store (chDB allows one process per data directory)."""


class ServerReader:
    """Read-only queries on a ClickHouse server; the server enforces ``readonly = 1`` per query."""

    def __init__(self, client: Any, where: str) -> None:
        self.client = client
        self.where = where

    def statement(self, sql: str) -> str:
        try:
            result = self.client.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": sql},
                                       settings={"readonly": 1})
        except Exception as exc:
            raise store_error(exc) from None
        formatted = str(result.result_rows[0][0]).strip()
        check_statement(formatted)
        return formatted

    @contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Iterator[pa.RecordBatchReader]:
        sql = self.statement(sql)  # what runs is exactly the one statement that was checked
        try:
            params = {k: query_parameter(v) for k, v in (parameters or {}).items()}  # as the engine's text form
            context = self.client.query_arrow_stream(sql, parameters=params, settings={"readonly": 1})
        except Exception as exc:
            raise store_error(exc) from None
        with context as batches:
            iterator = iter(batches)
            first = next(iterator, None)
            schema = first.schema if first is not None else pa.schema([])
            rest = iterator if first is None else _chain(first, iterator)
            yield _guarded(pa.RecordBatchReader.from_batches(schema, rest))

    def close(self) -> None:
        self.client.close()


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


def _guarded(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """A reader whose failures part-way (the engine's errors) surface as StoreError."""

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except StoreError:
            raise
        except Exception as exc:
            raise store_error(exc) from None

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def query_parameter(value: Any) -> str:
    """A query parameter in ClickHouse's text form (``{name:Type}`` placeholders)."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(literal(str(v)) if isinstance(v, str) else str(v) for v in value) + "]"
    if isinstance(value, datetime):  # as a DateTime64(3, 'UTC') parameter reads it
        utc = value.astimezone(timezone.utc) if value.tzinfo else value
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def rows_of(reader: pa.RecordBatchReader) -> tuple[list[str], list[tuple]]:
    """Materialise a (small) result as column names and row tuples."""
    table = reader.read_all()
    columns = table.column_names
    return columns, [tuple(r[c] for c in columns) for r in table.to_pylist()]
