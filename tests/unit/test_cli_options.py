"""Service commands take their settings as flags that fall back to ONESTOP_* variables."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from onestop.settings import get_settings
from onestop_cli import app

runner = CliRunner()


def help_of(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("command", "pairs"), [
    (("worker",), {"--clock": "ONESTOP_CLOCK", "--app-id": "ONESTOP_APP_ID", "--web-port": "ONESTOP_WEB_PORT",
                   "--worker-batch": "ONESTOP_WORKER_BATCH", "--kafka-bootstrap": "ONESTOP_KAFKA_BOOTSTRAP",
                   "--catalogue-file": "ONESTOP_CATALOGUE_FILE", "--metrics-port": "ONESTOP_METRICS_PORT"}),
    (("sink",), {"--clickhouse-dsn": "ONESTOP_CLICKHOUSE_DSN", "--sink-group": "ONESTOP_SINK_GROUP",
                 "--sink-batch-size": "ONESTOP_SINK_BATCH_SIZE", "--topic-events": "ONESTOP_TOPIC_EVENTS"}),
    (("gateway", "serve"), {"--host": "ONESTOP_GATEWAY_HOST", "--port": "ONESTOP_GATEWAY_PORT",
                            "--tokens-file": "ONESTOP_GATEWAY_TOKENS_FILE",
                            "--kafka-bootstrap": "ONESTOP_KAFKA_BOOTSTRAP"}),
    (("alerts", "run"), {"--alertmanager-url": "ONESTOP_ALERTMANAGER_URL",
                         "--router-escalation": "ONESTOP_ROUTER_ESCALATION", "--topic-alerts": "ONESTOP_TOPIC_ALERTS"}),
])
def test_help_names_each_flag_with_its_variable(command: tuple[str, ...], pairs: dict[str, str]) -> None:
    lines = help_of(*command).splitlines()
    for flag, variable in pairs.items():
        # The flag's entry (its line and the wrapped lines under it) names its variable.
        start = next(i for i, line in enumerate(lines) if re.search(rf"{flag}\b", line))
        entry = " ".join(lines[start:start + 4])
        assert f"env var: {variable}]" in entry, (flag, entry)


def test_the_clock_flag_lists_its_choices() -> None:
    assert re.search(r"--clock\s+<wall\|event>", help_of("worker"))


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch):
    """The settings the worker command would run with (the runner itself is not started)."""
    import streams.app

    seen = {}
    monkeypatch.setattr(streams.app, "run_worker", lambda settings, loglevel: seen.update(settings=settings))
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def test_a_flag_beats_its_variable_and_the_variable_beats_the_default(captured) -> None:
    result = runner.invoke(app, ["worker", "--clock", "event"], env={"ONESTOP_CLOCK": "wall",
                                                                     "ONESTOP_WORKER_BATCH": "17"})
    assert result.exit_code == 0, result.output
    settings = captured["settings"]
    assert settings.clock == "event"  # the flag
    assert settings.worker_batch == 17  # the variable
    assert settings.app_id == "onestop-ioc"  # the default


def test_an_invalid_flag_names_the_flag_and_the_variable(captured) -> None:
    result = runner.invoke(app, ["worker", "--worker-batch", "0"], env={"COLUMNS": "250"})
    assert result.exit_code == 2
    assert "--worker-batch / ONESTOP_WORKER_BATCH" in result.output
    assert "settings" not in captured


def test_an_invalid_variable_is_a_usage_error_not_a_traceback(captured) -> None:
    result = runner.invoke(app, ["worker"], env={"ONESTOP_CLOCK": "sometimes", "COLUMNS": "250"})
    assert result.exit_code == 2
    assert "ONESTOP_CLOCK" in result.output and "Traceback" not in result.output
