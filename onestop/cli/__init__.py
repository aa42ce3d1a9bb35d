"""The ``onestop`` command: one entry point for operators, data teams and scripts.

The CLI is the composition root. It is the only part of the ``onestop``
package allowed to reach the adapters (Kafka, Faust, ClickHouse, HTTP), and it
imports them lazily inside each command so ``onestop --help`` stays fast.
"""

from __future__ import annotations

import logging

import typer

from onestop.settings import get_settings

app = typer.Typer(
    name="onestop",
    help="Commune one-stop dossiers → Kafka → Faust → ClickHouse → Grafana, for provincial IOCs.\n\n"
    "Every option falls back to an ONESTOP_* environment variable (see `onestop config`).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


def _register() -> None:
    from onestop.cli import alerts, dlq, gateway, importer, kafka, pipeline, replay, sla

    app.add_typer(kafka.app, name="kafka", help="Run the local Apache Kafka broker (KRaft, 127.0.0.1).")
    app.add_typer(sla.app, name="sla", help="The legal SLA clock: due dates and classifications.")
    gateway.register(app)
    app.command(name="import", help="Import a one-stop export (CSV or JSONL) into Kafka; bad rows go to the DLQ.")(importer.import_file)
    app.add_typer(dlq.app, name="dlq", help="Inspect the dead-letter queue (dossier.dlq).")
    pipeline.register(app)
    replay.register(app)
    app.add_typer(alerts.app, name="alerts", help="On-call alerting: route dossier alerts to Alertmanager, list, silence.")


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        # kafka-python logs every connection at INFO; operators need its warnings only.
        logging.getLogger("kafka").setLevel(logging.WARNING)


_register()


def main() -> None:
    app()
