"""A benchmark command run as CI runs it: a subprocess from the repository root, bounded in time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 420


def run_benchmark(module: str, *args: str, what: str = "benchmark") -> str:
    """Run ``python -m module args…``; return its output once it exited 0 (fail the test otherwise)."""
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        stdout, _ = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the benchmarks stop their broker and children on SIGTERM
        stdout, _ = proc.communicate(timeout=120)
        pytest.fail(f"{what} still running after {LIMIT_S}s:\n{stdout[-3000:]}")
    assert proc.returncode == 0, stdout[-3000:]
    return stdout
