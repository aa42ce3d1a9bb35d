"""`onestop export` writes exactly the rows of its range, once each, in Parquet and CSV, directly and via the owner.

The files are checked against the seeding formula (``tests.bench.export.expected_row``),
computed in Python, never against what the exporter read.
"""

from __future__ import annotations

from pathlib import Path

import csv
import os
import re
import subprocess
import sys
from datetime import timezone

import pyarrow.parquet as pq
import pytest

from onestop.settings import Settings, settings_env
from sinks.clickhouse import connect
from sinks.store_owner import StoreOwner
from tests.bench.export import SEED_SQL, expected_row, seed

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

BENCH_ROWS = 200_000
CHECKED = ("event_id", "event_type", "dossier_id", "seq", "occurred_at", "commune_code", "handling_commune_code",
           "procedure_code", "channel", "due_at", "source", "kafka_partition", "kafka_offset")


def check_parquet(path, first: int, last: int) -> None:
    """Rows first..last-1, each once, in any order (an export does not sort)."""
    rows = sorted(pq.read_table(path, columns=list(CHECKED)).to_pylist(), key=lambda r: r["kafka_offset"])
    assert len(rows) == last - first
    for n, row in zip(range(first, last), rows):
        assert row == {k: v for k, v in expected_row(n).items() if k in CHECKED}, n


def csv_text(value) -> str:  # type: ignore[no-untyped-def]
    if value is None:
        return ""
    if hasattr(value, "astimezone"):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    return str(value)


def check_csv(path, first: int, last: int) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["kafka_offset"]))
    assert len(rows) == last - first
    for n, row in zip(range(first, last), rows):
        assert {k: row[k] for k in CHECKED} == {k: csv_text(v) for k, v in expected_row(n).items() if k in CHECKED}


def test_the_reduced_benchmark_exports_every_row_once_in_both_formats_and_both_paths(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "tests.bench.export", "--rows", str(BENCH_ROWS), "--out-dir",
                           str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for path in ("direct", "owner"):
        for fmt in ("parquet", "csv"):
            assert re.search(rf"^{path}\s+{fmt}\s+{BENCH_ROWS:,}\s+[\d.]+\s+[\d,]+\s+[\d.]+", done.stdout, re.M), \
                done.stdout
    assert "machine: nproc" in done.stdout
    check_parquet(out / "direct.parquet", 0, BENCH_ROWS)
    check_parquet(out / "owner.parquet", 0, BENCH_ROWS)
    check_csv(out / "direct.csv", 0, BENCH_ROWS)
    check_csv(out / "owner.csv", 0, BENCH_ROWS)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """1,000 rows, and rows 100-199 written a second time in a part of their own (as a retried batch)."""
    settings = Settings(home=tmp_path_factory.mktemp("export-home"), clickhouse_dsn="")
    seed(settings, 1000)
    client = connect(settings)
    client.command(SEED_SQL.format(db="ioc", first=100, count=100))
    assert client.query("SELECT count() FROM ioc.dossier_events").result_rows == [(1100,)]
    client.close()
    return settings


def export(settings: Settings, out, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onestop_cli", "export", "--table", "dossier_events", "--out", str(out),
                           *args], env={**os.environ, **settings_env(settings)}, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("owned", [False, True], ids=["direct", "via-owner"])
def test_since_is_inclusive_until_exclusive_local_time_by_default_and_duplicates_are_exported_once(store, tmp_path,
                                                                                                   owned):
    out = tmp_path / "slice.parquet"
    # 07:00:25 in Asia/Ho_Chi_Minh is 00:00:25Z: row 100 (0.25 s apart); until row 300, exclusive.
    args = ("--since", "2026-10-01T07:00:25", "--until", "2026-10-01T00:01:15Z")
    if owned:
        with StoreOwner(store):
            done = export(store, out, *args)
    else:
        done = export(store, out, *args)
    assert done.returncode == 0, done.stderr
    assert "exported 200 rows of ioc.dossier_events on occurred_at" in done.stderr
    check_parquet(out, 100, 300)  # rows 100-199 exist twice in the table, once in the file


def test_a_csv_slice(store, tmp_path):
    out = tmp_path / "slice.csv"
    done = export(store, out, "--since", "2026-10-01T00:04:00Z", "--until", "2026-10-01T00:04:05Z")
    assert done.returncode == 0, done.stderr
    check_csv(out, 960, 980)  # 240 s / 0.25 s to 245 s / 0.25 s


def test_an_empty_range_gives_a_file_with_the_columns_and_no_rows(store, tmp_path):
    out = tmp_path / "empty.parquet"
    done = export(store, out, "--since", "2027-01-01", "--until", "2027-02-01")
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.num_rows == 0 and "occurred_at" in table.column_names


def test_an_unknown_table_is_an_error_naming_the_tables_and_writes_nothing(store, tmp_path):
    out = tmp_path / "x.parquet"
    done = export(store, out.with_name("x.parquet"), "--table", "dosier_events")
    assert done.returncode == 1 and "no table ioc.dosier_events" in done.stderr and "dossier_events" in done.stderr
    assert list(tmp_path.iterdir()) == []
