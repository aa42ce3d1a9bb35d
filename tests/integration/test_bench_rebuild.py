"""The rebuild benchmark runs end to end on a tiny log: a figure for each path, exit 0. No assertion on speed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bench_runner import run_benchmark

pytestmark = pytest.mark.integration


def test_rebuild_benchmark_prints_the_rebuild_and_raw_rates_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "rebuild.json"
    stdout = run_benchmark("tests.bench.rebuild", "--events", "3000", "--partitions", "4", "--json", str(out),
                           what="rebuild benchmark")
    for path in ("raw", "rebuild"):
        assert re.search(rf"^{path}\s+3,000\s+[\d.]+\s+[\d,]+\s", stdout, re.MULTILINE), (path, stdout[-3000:])
    assert re.search(r"^targets: rebuild [\d,]+ events/s vs target 50,000: (met|NOT met); \d+% of the raw", stdout,
                     re.MULTILINE), stdout[-3000:]
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"raw", "rebuild"}
    for result in doc["results"].values():
        assert result["events"] == 3000 and result["seconds"] > 0 and result["rate"] > 0
    assert doc["results"]["rebuild"]["extra"]["rows"]["dossier_events"] == 3000
    assert doc["rebuild_pct_of_raw"] > 0 and doc["machine"]["nproc"] >= 1 and "machine:" in stdout
