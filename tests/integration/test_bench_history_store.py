"""The history benchmarks run end to end in one short run: writer, rebuild, raw consumer and freshness.

No assertion on speed: the figures of record are in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bench_runner import run_benchmark

pytestmark = pytest.mark.integration


def test_the_history_benchmarks_print_every_figure_from_one_run(tmp_path: Path) -> None:
    out = tmp_path / "history-store.json"
    stdout = run_benchmark("tests.bench.history_store", "--events", "2000", "--partitions", "4", "--rate", "50",
                           "--seconds", "4", "--json", str(out), what="history store benchmark")
    for label in ("raw consumer", "rebuild", "writer into chDB", "freshness p99"):
        assert re.search(rf"^{label}.*\d", stdout, re.MULTILINE), (label, stdout[-3000:])
    doc = json.loads(out.read_text())
    figures = doc["figures"]
    assert doc["rebuild"]["events"] == 2000 and doc["raw"]["events"] == 2000
    assert figures["writer_rows_per_s"] > 0 and figures["rebuild_events_per_s"] > 0
    fresh = figures["freshness"]
    assert fresh["published"] == fresh["seen"] == 200  # every event published became queryable
    assert 0 < fresh["p50_s"] <= fresh["p99_s"] <= fresh["max_s"]
