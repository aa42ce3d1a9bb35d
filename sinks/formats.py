"""Query results (Arrow batch streams) written as CSV, TSV, JSON, JSON Lines or Parquet, batch by batch.

Nothing here holds more than one batch: a result of any size is written in
constant memory. Times stay in UTC as stored (ISO 8601 with ``Z`` or
``+00:00``); dashboards show them in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

STREAM_FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")
_NESTED = (pa.types.is_list, pa.types.is_large_list, pa.types.is_struct, pa.types.is_map,
           pa.types.is_fixed_size_list)


def write_batches(batches: pa.RecordBatchReader, fmt: str, out: BinaryIO) -> int:
    """Write every batch of ``batches`` to ``out`` in ``fmt``; return the number of rows."""
    if fmt == "parquet":
        return _parquet(batches, out)
    if fmt in ("csv", "tsv"):
        return _delimited(batches, out, "\t" if fmt == "tsv" else ",")
    if fmt in ("json", "jsonl"):
        return _json(batches, out, lines=fmt == "jsonl")
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(STREAM_FORMATS)}")


def _parquet(batches: pa.RecordBatchReader, out: BinaryIO) -> int:
    rows = 0
    with pq.ParquetWriter(out, batches.schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)  # one row group per batch: the file never sits in memory
            rows += batch.num_rows
    return rows


def _delimited(batches: pa.RecordBatchReader, out: BinaryIO, delimiter: str) -> int:
    schema = _flat_schema(batches.schema)
    rows = 0
    with pa_csv.CSVWriter(out, schema, write_options=pa_csv.WriteOptions(delimiter=delimiter)) as writer:
        for batch in batches:
            writer.write_batch(_flat(batch, schema))
            rows += batch.num_rows
    return rows


def _json(batches: pa.RecordBatchReader, out: BinaryIO, *, lines: bool) -> int:
    rows = 0
    if not lines:
        out.write(b"[")
    for batch in batches:
        for record in batch.to_pylist():
            text = json.dumps(record, default=_json_value, ensure_ascii=False)
            out.write(((text + "\n") if lines else (("," if rows else "") + "\n" + text)).encode("utf-8"))
            rows += 1
    if not lines:
        out.write(b"\n]\n")
    return rows


def _json_value(value: object) -> object:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _textual(kind: pa.DataType) -> bool:
    return any(t(kind) for t in _NESTED) or (pa.types.is_timestamp(kind) and kind.tz is not None)


def _flat_schema(schema: pa.Schema) -> pa.Schema:
    """CSV has no nested values: arrays, tuples and maps become JSON text; zoned times become UTC text."""
    return pa.schema([pa.field(f.name, pa.string()) if _textual(f.type) else f for f in schema])


def _flat(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    if schema == batch.schema:
        return batch
    columns = []
    for column, field in zip(batch.columns, schema):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            # Arrow keeps UTC instants, so dropping the zone gives UTC wall time. This is ten times
            # faster than letting the CSV writer convert each value through the time-zone database.
            naive = column.cast(pa.timestamp(column.type.unit)).cast(pa.string())
            column = pc.binary_join_element_wise(naive, pa.scalar("Z"), "")
        elif column.type != field.type:
            column = pa.array([None if v is None else json.dumps(v, default=_json_value, ensure_ascii=False)
                               for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


@contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A file that appears under ``path`` only once fully written; nothing is left behind on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
