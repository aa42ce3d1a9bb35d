"""``onestop db``: its help, and ``migrate --cluster``, which emits statements without opening a store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from onestop.settings import get_settings
from onestop_cli import app
from sinks import cluster


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("ONESTOP_HOME", str(tmp_path))
    monkeypatch.delenv("ONESTOP_CLICKHOUSE_DATABASE", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_migrate_with_a_cluster_prints_the_script_and_touches_no_store(tmp_path):
    result = CliRunner().invoke(app, ["db", "migrate", "--cluster", "ioc_cluster"])
    assert result.exit_code == 0, result.output
    assert result.stdout == cluster.script("ioc", "ioc_cluster")
    assert not (tmp_path / "chdb").exists()


def test_migrate_with_a_cluster_writes_the_file_given(tmp_path):
    target = tmp_path / "cluster.sql"
    result = CliRunner().invoke(app, ["db", "migrate", "--cluster", "ioc_cluster", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8") == cluster.script("ioc", "ioc_cluster")


def test_out_and_apply_need_a_cluster():
    for args in (["--out", "x.sql"], ["--apply"]):
        result = CliRunner().invoke(app, ["db", "migrate", *args])
        assert result.exit_code == 2 and "--cluster" in result.stderr


@pytest.mark.parametrize("command", [["db"], ["db", "migrate"], ["db", "status"]])
def test_help_names_the_environment_variables(command):
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for variable in ("ONESTOP_CLICKHOUSE_DSN", "ONESTOP_CLICKHOUSE_DATABASE", "ONESTOP_HOME"):
        assert variable in result.stdout, (command, variable)
