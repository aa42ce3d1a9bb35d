"""``onestop kafka``: the local Apache Kafka broker (KRaft, one node, 127.0.0.1) for development and demos.

The work is done by :mod:`ops.broker` and :mod:`ops.topics`; this module only parses options and prints.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import typer
from rich.console import Console
from rich.table import Table

from onestop.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")
out = Console()
err = Console(stderr=True)

PORT_HELP = "Client port of the broker on 127.0.0.1; defaults to ONESTOP_KAFKA_PORT (9092)."


@app.callback()
def _quiet_client() -> None:
    # kafka-python narrates every connection at INFO; keep that for --verbose only.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)


def _settings(port: int | None = None, controller_port: int | None = None) -> Settings:
    update = {"kafka_port": port, "kafka_controller_port": controller_port}
    return get_settings().model_copy(update={k: v for k, v in update.items() if v is not None})


def _fail(error: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {error}", highlight=False, markup=True)
    raise typer.Exit(1)


def _print_topics(counts: dict[str, int]) -> None:
    table = Table("topic", "partitions")
    for name in sorted(counts):
        table.add_row(name, str(counts[name]))
    out.print(table)


@app.command()
def start(
    port: int | None = typer.Option(None, "--port", "-p", help=PORT_HELP),
    controller_port: int | None = typer.Option(
        None, "--controller-port", help="KRaft controller port; defaults to ONESTOP_KAFKA_CONTROLLER_PORT (9093)."
    ),
    timeout: float = typer.Option(90.0, help="Seconds to wait for the broker to answer."),
) -> None:
    """Fetch the jars if needed, start the broker (or reuse the running one) and create the topics."""
    from ops import broker, topics

    settings = _settings(port, controller_port)
    try:
        with err.status(f"Fetching Kafka {settings.kafka_version} jars (Maven Central)…"):
            broker.ensure_jars(settings)
        with err.status(f"Starting Kafka on 127.0.0.1:{settings.kafka_port}…"):
            state = broker.start(settings, timeout=timeout)
        with err.status("Creating topics…"):
            counts = topics.create_topics(settings)
    except broker.BrokerError as error:
        _fail(error)
    verb = "already running" if state.reused else "started"
    out.print(f"Kafka {settings.kafka_version} {verb}: bootstrap [bold]{state.bootstrap}[/], pid {state.pid}")
    out.print(f"log: {state.log_file}")
    _print_topics(counts)
    if state.bootstrap not in settings.kafka_bootstrap.split(","):
        err.print(f"[yellow]note:[/] ONESTOP_KAFKA_BOOTSTRAP is {settings.kafka_bootstrap}; "
                  f"export ONESTOP_KAFKA_BOOTSTRAP={state.bootstrap} for the pipeline to use this broker.")


@app.command()
def stop() -> None:
    """Stop the broker started from this ONESTOP_HOME (only its recorded pid)."""
    from ops import broker, topics

    settings = _settings()
    try:
        with err.status("Stopping Kafka…"):
            stopped = broker.stop(settings)
    except broker.BrokerError as error:
        _fail(error)
    out.print("Kafka stopped." if stopped else "Kafka was not running.")


@app.command()
def status() -> None:
    """Show whether the broker runs and answers; exit code 0 if it does, 1 if not."""
    from ops import broker, topics

    state = broker.status(_settings())
    if state.running:
        out.print(f"running: bootstrap {state.bootstrap}, pid {state.pid}, log {state.log_file}")
        return
    out.print(f"not running ({state.detail})")
    raise typer.Exit(1)


@app.command()
def topics(
    create: bool = typer.Option(True, "--create/--no-create", help="Create missing pipeline topics first."),
) -> None:
    """Create the pipeline topics if missing and list every topic with its partition count."""
    from ops import broker, topics

    state = broker.status(_settings())
    if not state.running:
        _fail(broker.BrokerError(f"the broker is not running ({state.detail}); run `onestop kafka start`."))
    settings = _settings(port=state.port)
    try:
        if create:
            topics.create_topics(settings)
        counts = topics.list_topics(settings)
    except broker.BrokerError as error:
        _fail(error)
    _print_topics(counts)
