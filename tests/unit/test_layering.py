"""The shape of the house: import-linter's contracts (``[tool.importlinter]`` in pyproject.toml).

The first test runs them on the tree as it is. The others copy the packages into a
temporary directory, add one forbidden import to the copy, and check that exactly the
contract that forbids it reports it broken, so each contract is shown to be able to fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("onestop", "onestop_cli", "ops", "producers", "streams", "sinks", "dashboards", "telemetry")
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                              "sys.exit(lint_imports_command())"]


def lint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # the copy shadows the installed checkout
    return subprocess.run([*LINT, "--no-cache", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_every_contract_holds_on_the_tree() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.fixture(scope="module")
def copy_of_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def tree(copy_of_tree: Path, tmp_path: Path) -> Path:
    """A fresh copy per test, so that each test breaks one rule only."""
    root = tmp_path / "tree"
    shutil.copytree(copy_of_tree, root)
    return root


def add_import(tree: Path, module: str, line: str) -> None:
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("onestop/fold.py", "import kafka", "core-is-pure"),
    ("onestop/sla.py", "import clickhouse_connect", "core-is-pure"),
    ("onestop/report.py", "from sinks import schema", "core-is-pure"),
    ("onestop/events.py", "import onestop_cli", "core-is-pure"),
    ("streams/model.py", "import onestop_cli", "cli-on-top"),
    ("ops/lag.py", "from onestop_cli import output", "cli-on-top"),
    ("sinks/writer.py", "import ops.broker", "layers"),
    ("producers/sim_config.py", "from producers import simulator", "no-cycles"),
    ("ops/admin.py", "from ops import broker", "no-cycles"),
])
def test_a_forbidden_import_breaks_its_contract(tree: Path, module: str, line: str, contract: str) -> None:
    assert lint(tree, "--contract", contract).returncode == 0  # the copy holds before the change
    add_import(tree, module, line)
    result = lint(tree, "--contract", contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "0 kept, 1 broken" in result.stdout
