"""The ``onestop`` command: one entry point for operators, data teams and scripts.

This package is the composition root: it sits on top of the domain core
(``onestop``), the adapters (``producers``, ``streams``, ``sinks``, ``dashboards``)
and local operations (``ops``), and wires them together. Nothing imports it but
the ``onestop`` console script and its own tests. It imports the adapters lazily
inside each command so ``onestop --help`` stays fast.
"""

from __future__ import annotations

import logging

import typer
from pydantic import ValidationError

from onestop.settings import Settings, get_settings
from onestop_cli.options import invalid_settings

app = typer.Typer(
    name="onestop",
    help="Commune one-stop dossiers → Kafka → Faust → ClickHouse → Grafana, for provincial IOCs.\n\n"
    "Every option falls back to an ONESTOP_* environment variable (see `onestop config`).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


def _register() -> None:
    from onestop_cli import (alerts, dashboards, db, demo, derived, dlq, gateway, history, importer, ioc, kafka,
                             pipeline, replay, report, report_html, sla)

    app.add_typer(kafka.app, name="kafka", help="Run the local Apache Kafka broker (KRaft, 127.0.0.1).")
    app.add_typer(sla.app, name="sla", help="The legal SLA clock: due dates and classifications.")
    gateway.register(app)
    app.command(name="import", help="Import a one-stop export (CSV or JSONL) into Kafka; bad rows go to the DLQ.")(importer.import_file)
    app.add_typer(dlq.app, name="dlq", help="Inspect the dead-letter queue (dossier.dlq).")
    pipeline.register(app)
    replay.register(app)
    app.add_typer(alerts.app, name="alerts", help="On-call alerting: route dossier alerts to Alertmanager, list, silence.")
    app.command(help="Run the whole pipeline once: Kafka, worker, sink, simulator, backlog report.")(demo.demo)
    history.register(app)
    app.add_typer(db.app, name="db", help="The store's schema: apply the numbered migrations, show their status, "
                  "emit the schema for a ClickHouse cluster.")
    derived.register(app)
    report_html.register(report.app)
    app.add_typer(report.app, name="report", help="Reports from the store: Biểu 06 and the IOC panels as HTML.")
    app.add_typer(dashboards.app, name="dashboards", help="The IOC dashboards: export Grafana JSON, publish to Grafana.")
    app.command(help="Serve the IOC panels live on loopback (wall-screen view of the embedded store).")(ioc.ioc)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise typer.BadParameter(invalid_settings(Settings, exc)) from None
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        # kafka-python logs every connection at INFO; operators need its warnings only.
        logging.getLogger("kafka").setLevel(logging.WARNING)
    _warn_unknown_variables()


def _warn_unknown_variables() -> None:
    """A misspelt ONESTOP_* variable would be silently ignored: say so at start-up."""
    from onestop.settings import warn_unknown_variables
    from producers.gateway_settings import GatewaySettings
    from producers.settings import PublisherSettings

    warn_unknown_variables(classes=(PublisherSettings, GatewaySettings))


_register()


def main() -> None:
    app()
