"""The freshness benchmark runs end to end, briefly: every published event is read back, figures printed, exit 0.

No assertion on time: the figures of record are in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import re

import pytest
from bench_runner import run_benchmark

pytestmark = pytest.mark.integration


def test_freshness_benchmark_reads_back_every_event_and_prints_its_percentiles(tmp_path):
    out = tmp_path / "freshness.json"
    stdout = run_benchmark("tests.bench.freshness", "--rate", "100", "--seconds", "5", "--partitions", "4",
                           "--json", str(out))
    assert re.search(r"freshness\s+p50 [\d.]+ s\s+p99 [\d.]+ s\s+max [\d.]+ s", stdout), stdout
    result = json.loads(out.read_text())["result"]
    assert result["published"] == 500 and result["seen"] == 500  # every event became queryable
    assert 0 < result["p50_s"] <= result["p99_s"] <= result["max_s"]
