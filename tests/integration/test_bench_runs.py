"""The benchmark runs end to end on a tiny backlog: a figure for each path, exit 0. No assertion on speed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from bench_runner import run_benchmark

pytestmark = pytest.mark.integration


def test_benchmark_prints_a_rate_for_each_path_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    stdout = run_benchmark("tests.bench.run", "--events", "3000", "--partitions", "4", "--json", str(out))
    for path in ("raw", "noop", "worker"):
        assert re.search(rf"^{path}\s+[\d,]+\s+[\d.]+\s+[\d,]+\s", stdout, re.MULTILINE), (path, stdout[-3000:])
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"raw", "noop", "worker"}
    for result in doc["results"].values():
        assert result["events"] > 0 and result["seconds"] > 0 and result["rate"] > 0
    assert doc["worker_pct_of_noop"] is not None
    assert doc["machine"]["nproc"] >= 1 and doc["machine"]["python"]
    assert "machine:" in stdout


@pytest.mark.skipif(shutil.which("prometheus-alertmanager") is None, reason="prometheus-alertmanager not installed")
def test_alert_latency_benchmark_prints_percentiles_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "alerts.json"
    stdout = run_benchmark("tests.bench.alert_latency", "--dossiers", "6", "--spread", "3", "--partitions", "4",
                           "--json", str(out), what="alert benchmark")
    assert re.search(r"^due → webhook, minus group_wait\s+6\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$", stdout,
                     re.MULTILINE), stdout[-3000:]
    doc = json.loads(out.read_text())
    total = doc["results"]["due → webhook, minus group_wait"]
    assert total["n"] == 6 and doc["missing"] == [] and total["max"] >= total["p50"]
    assert doc["machine"]["nproc"] >= 1 and doc["config"]["group_wait"] == "1s"
