"""One name per setting: every command and the worker read the same ONESTOP_* variables, from one class.

A province that names its catalogue in the environment must get the same due
dates from `onestop sla` and from the worker; a misspelt variable must not be
silently ignored.
"""

import logging
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onestop_cli import app as root
from onestop.settings import (TEST_PREFIX, Settings, env_var, get_settings, known_variables, unknown_variables,
                              warn_unknown_variables)
from producers.gateway_settings import GatewaySettings
from producers.settings import PublisherSettings
from streams.app import build_processor

runner = CliRunner()
REPO_ROOT = Path(__file__).resolve().parents[2]
# A catalogue that gives 9.000001 two working hours: accepted Mon 16:00, due Tue 08:30.
CATALOGUE = ("code,name,field,legal_time,time_unit,financial_wait_pauses,version\n"
             "9.000001,Thử,Thử,2,hours,false,t1\n")


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch):
    for name in list(__import__("os").environ):
        if name.upper().startswith("ONESTOP_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def province_catalogue(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "procedures.csv"
    path.write_text(CATALOGUE, encoding="utf-8")
    monkeypatch.setenv("ONESTOP_CATALOGUE_FILE", str(path))
    return path


def test_the_sla_command_and_the_worker_read_the_catalogue_from_the_same_variable(province_catalogue):
    result = runner.invoke(root, ["sla", "due", "-p", "9.000001", "-a", "2025-05-05T16:00", "--json"])
    assert result.exit_code == 0, result.output
    assert '"due_at":"2025-05-06T08:30:00+07:00"' in result.output
    worker = build_processor(Settings())
    assert worker.evaluator.catalogue.source == str(province_catalogue)
    assert worker.evaluator.catalogue.find("9.000001", None) is not None


def test_the_name_the_documentation_used_to_give_is_warned_about_with_the_right_one(tmp_path, monkeypatch, caplog):
    path = tmp_path / "procedures.csv"
    path.write_text(CATALOGUE, encoding="utf-8")
    monkeypatch.setenv("ONESTOP_CATALOGUE", str(path))
    with caplog.at_level(logging.WARNING, logger="onestop.settings"):
        result = runner.invoke(root, ["sla", "due", "-p", "1.001193", "-a", "2025-05-05T09:00"])
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ONESTOP_CATALOGUE is not a setting" in w and "did you mean ONESTOP_CATALOGUE_FILE?" in w
               for w in warnings), warnings
    assert build_processor(Settings()).evaluator.catalogue.source == "onestop/data/procedures.csv"


def test_unknown_variables_get_the_closest_known_name_and_known_ones_pass():
    environ = {"ONESTOP_KAFKA_BOOTSTRAP": "x:1", "ONESTOP_GATEWAY_PORT": "8088", "ONESTOP_PUBLISHER_FSYNC": "never",
               "ONESTOP_SEQ_GAP_TIMEOUT": "60", "ONESTOP_COMPLETELY_DIFFERENT_THING": "1", "PATH": "/bin"}
    found = unknown_variables(environ, classes=(PublisherSettings, GatewaySettings))
    assert found == {"ONESTOP_SEQ_GAP_TIMEOUT": "ONESTOP_SEQ_GAP_TIMEOUT_S",
                     "ONESTOP_COMPLETELY_DIFFERENT_THING": None}


def test_the_warning_names_the_variable(caplog):
    with caplog.at_level(logging.WARNING, logger="onestop.settings"):
        warn_unknown_variables({"ONESTOP_CLOK": "event"})
    assert [r.getMessage() for r in caplog.records] == [
        "environment variable ONESTOP_CLOK is not a setting of onestop and is ignored; did you mean ONESTOP_CLOCK? "
        "(`onestop config` lists them all)"]


def test_env_var_names_a_field_and_refuses_others():
    assert env_var("catalogue_file") == "ONESTOP_CATALOGUE_FILE"
    assert env_var("port", GatewaySettings) == "ONESTOP_GATEWAY_PORT"
    with pytest.raises(KeyError):
        env_var("catalogue")


def test_an_empty_file_setting_means_none(monkeypatch):
    # docker-compose passes `${ONESTOP_CATALOGUE_FILE:-}` as "" when .env leaves it empty.
    monkeypatch.setenv("ONESTOP_CATALOGUE_FILE", "")
    monkeypatch.setenv("ONESTOP_CALENDAR_OVERRIDE", " ")
    assert (Settings().catalogue_file, Settings().calendar_override) == (None, None)


def test_the_simulator_takes_its_seed_default_from_the_settings(monkeypatch):
    args = ["simulate", "--dry-run", "-c", "1", "-n", "3", "--days", "3"]
    explicit = runner.invoke(root, [*args, "--seed", "7"])
    monkeypatch.setenv("ONESTOP_SIMULATE_SEED", "7")
    get_settings.cache_clear()
    from_env = runner.invoke(root, args)
    assert explicit.exit_code == from_env.exit_code == 0, (explicit.output, from_env.output)
    assert from_env.stdout == explicit.stdout and from_env.stdout.count("\n") > 3


DOCUMENTED = ["README.md", ".env.example", "docker-compose.yml", "Dockerfile", "docs", "deploy", "onestop",
              "producers", "streams", "sinks", "dashboards"]


def _mentions() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for entry in DOCUMENTED:
        root_path = REPO_ROOT / entry
        files = [root_path] if root_path.is_file() else [p for p in root_path.rglob("*") if p.is_file()]
        for path in files:
            if path.suffix in {".pyc", ".csv"}:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for name in re.findall(r"ONESTOP_[A-Z0-9_]*[A-Z0-9]", text):
                out.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    return out


def test_every_variable_the_docs_and_configs_name_is_read_by_a_settings_class():
    known = known_variables((PublisherSettings, GatewaySettings))
    prefixes = ("ONESTOP_GATEWAY", "ONESTOP_PUBLISHER", "ONESTOP_TEST")  # "ONESTOP_GATEWAY_*" names the family
    unknown = {name: sorted(where) for name, where in _mentions().items()
               if name not in known and name not in prefixes and not name.startswith(TEST_PREFIX)}
    assert not unknown, f"named but read by no settings class: {unknown}"


def test_the_test_suites_own_variables_are_not_taken_for_misspelt_settings():
    unknown = unknown_variables({"ONESTOP_TEST_CLICKHOUSE_URL": "http://h:8123", "ONESTOP_CLOKC": "wall"})
    assert list(unknown) == ["ONESTOP_CLOKC"]
