"""deploy/prometheus: every alert rule has promtool tests, they pass, and the calendar series are current.

promtool is the one from the Debian package prometheus (`make tools` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.tools import silent_commune_series

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.test.yml"))
promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (make tools)")


def _alerts() -> set[str]:
    return {r["alert"] for path in RULES for g in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for r in g["rules"] if "alert" in r}


def test_every_alert_rule_has_a_promtool_test() -> None:
    tested = {t["alertname"] for path in TESTS for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
              for t in case.get("alert_rule_test", [])}
    assert _alerts() - tested == set()


def test_every_rule_file_is_loaded_by_some_test_file() -> None:
    loaded = {(path.parent / f).resolve() for path in TESTS
              for f in yaml.safe_load(path.read_text(encoding="utf-8"))["rule_files"]}
    assert {p.resolve() for p in RULES} <= loaded


def test_the_silent_commune_series_are_generated_from_the_current_calendar() -> None:
    assert silent_commune_series.main(["--check"]) == 0, "run: python -m tests.tools.silent_commune_series"


@promtool
def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(["promtool", "check", "rules", *map(str, RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@promtool
@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_promtool_rule_tests_pass(path: Path) -> None:
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
