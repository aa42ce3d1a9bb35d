"""Query results written as CSV, JSON, JSON Lines and Parquet: values as stored, times in UTC, nothing lost."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sinks.formats import atomic_output, write_batches

T = datetime(2026, 11, 5, 3, 0, 0, 123000, tzinfo=timezone.utc)


def result() -> pa.RecordBatchReader:
    schema = pa.schema([("commune_code", pa.string()), ("at", pa.timestamp("ms", tz="UTC")),
                        ("due", pa.timestamp("ms", tz="UTC")), ("day", pa.date32()), ("n", pa.uint64()),
                        ("codes", pa.list_(pa.string()))])
    first = pa.record_batch([["03595", "18754"], [T, T], [None, T], [date(2026, 11, 5)] * 2, [1, 2],
                             [["a", "b"], []]], schema=schema)
    second = pa.record_batch([["18073"], [T], [None], [date(2026, 11, 6)], [3], [None]], schema=schema)
    return pa.RecordBatchReader.from_batches(schema, [first, second])


def test_csv_keeps_leading_zeros_writes_utc_with_z_and_arrays_as_json():
    out = io.BytesIO()
    assert write_batches(result(), "csv", out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert rows[0] == {"commune_code": "03595", "at": "2026-11-05 03:00:00.123Z", "due": "", "day": "2026-11-05",
                       "n": "1", "codes": '["a", "b"]'}
    assert [r["commune_code"] for r in rows] == ["03595", "18754", "18073"] and rows[2]["codes"] == ""


def test_json_is_one_array_and_jsonl_one_object_per_line():
    array, lines = io.BytesIO(), io.BytesIO()
    write_batches(result(), "json", array)
    write_batches(result(), "jsonl", lines)
    records = json.loads(array.getvalue())
    assert records == [json.loads(line) for line in lines.getvalue().splitlines()]
    assert records[0] == {"commune_code": "03595", "at": "2026-11-05T03:00:00.123000+00:00", "due": None,
                          "day": "2026-11-05", "n": 1, "codes": ["a", "b"]}
    assert len(records) == 3


def test_an_empty_result_is_an_empty_json_array():
    out = io.BytesIO()
    empty = pa.RecordBatchReader.from_batches(pa.schema([("n", pa.int64())]), [])
    assert write_batches(empty, "json", out) == 0 and json.loads(out.getvalue()) == []


def test_parquet_keeps_types_and_values(tmp_path):
    path = tmp_path / "r.parquet"
    with atomic_output(path) as out:
        write_batches(result(), "parquet", out)
    table = pq.read_table(path)
    assert table.schema.field("at").type == pa.timestamp("ms", tz="UTC")
    assert table.column("commune_code").to_pylist() == ["03595", "18754", "18073"]
    assert pq.ParquetFile(path).num_row_groups == 2  # one per batch: written as they came


def test_a_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "r.csv"
    with pytest.raises(RuntimeError):
        with atomic_output(path) as out:
            out.write(b"half")
            raise RuntimeError("the store went away")
    assert list(tmp_path.iterdir()) == []
