"""The freshness benchmark runs end to end, briefly: every published event is read back, figures printed, exit 0.

No assertion on time: the figures of record are in docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path

import json
import os
import re
import signal
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.integration

LIMIT_S = 420


def test_freshness_benchmark_reads_back_every_event_and_prints_its_percentiles(tmp_path):
    out = tmp_path / "freshness.json"
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.freshness", "--rate", "100", "--seconds", "5",
                             "--partitions", "4", "--json", str(out)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        stdout, _ = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the benchmark stops its broker and children on SIGTERM
        stdout, _ = proc.communicate(timeout=120)
        pytest.fail(f"benchmark still running after {LIMIT_S}s:\n{stdout[-3000:]}")
    assert proc.returncode == 0, stdout[-3000:]
    assert re.search(r"freshness\s+p50 [\d.]+ s\s+p99 [\d.]+ s\s+max [\d.]+ s", stdout), stdout
    result = json.loads(out.read_text())["result"]
    assert result["published"] == 500 and result["seen"] == 500  # every event became queryable
    assert 0 < result["p50_s"] <= result["p99_s"] <= result["max_s"]
