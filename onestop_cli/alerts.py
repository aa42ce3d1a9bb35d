"""``onestop alerts``: on-call alerting through Alertmanager.

    onestop alerts run        route dossier.alerts to Alertmanager (the long-running router)
    onestop alerts list       the dossier alerts Alertmanager holds now
    onestop alerts silence    how to silence a commune or a dossier (amtool and API); --create does it

The logic lives in ``sinks.alert_router`` and ``sinks.oncall``.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console

from onestop.settings import Settings, get_settings
from onestop_cli.options import settings_options

console = Console()
app = typer.Typer(help="On-call alerting: dossier SLA alerts through Alertmanager.", rich_markup_mode="rich")

URL_HELP = "Alertmanager's URL [env: ONESTOP_ALERTMANAGER_URL, default http://127.0.0.1:9093]."


ROUTER_SETTINGS = ("alertmanager_url", "router_group", "router_resend_s", "router_hold_s", "router_escalation",
                   "router_retry_max_s", "router_batch", "escalate_after_working_days", "calendar_override",
                   "catalogue_file", "province_code", "metrics_port", "web_host", "kafka_bootstrap", "topic_alerts",
                   "topic_dlq", "home", "log_level")


@app.command()
@settings_options(Settings, *ROUTER_SETTINGS)
def run(settings: Settings) -> None:
    """Route dossier.alerts to Alertmanager until stopped: rebuilds the active alerts, posts, re-posts, escalates.

    Every flag falls back to the ONESTOP_* variable shown beside it.
    """
    from sinks.alert_router import run_router

    run_router(settings)


@app.command(name="list")
def list_alerts(
    commune: Optional[str] = typer.Option(None, "--commune", "-c", help="Only this commune (5-digit code)."),
    dossier: Optional[str] = typer.Option(None, "--dossier", "-d", help="Only this dossier."),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
    fmt: str = typer.Option("table", "--format", "-f", help="table, tsv or jsonl."),
) -> None:
    """The dossier alerts Alertmanager holds now (firing, silenced or inhibited)."""
    from onestop_cli.output import print_rows
    from sinks.alertmanager import AlertmanagerClient, AlertmanagerError
    from sinks.oncall import LIST_COLUMNS, alert_rows

    filters = [f'{name}="{value}"' for name, value in (("commune_code", commune), ("dossier_id", dossier)) if value]
    filters.append('alertname=~"DossierDueSoon|DossierOverdue"')
    target = url or get_settings().alertmanager_url
    try:
        with AlertmanagerClient(target) as client:
            alerts = client.alerts(filters)
    except AlertmanagerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    rows = alert_rows(alerts)
    print_rows(LIST_COLUMNS, rows, fmt, title=f"{len(rows)} dossier alerts in {target}")


@app.command()
def silence(
    commune: Optional[str] = typer.Option(None, "--commune", "-c", help="Silence this commune (5-digit code)."),
    dossier: Optional[str] = typer.Option(None, "--dossier", "-d", help="Silence this dossier."),
    field: Optional[str] = typer.Option(None, "--field", help="Only this field (lĩnh vực), e.g. 'Đất đai'."),
    duration: str = typer.Option("2h", "--duration", help="How long: 90m, 2h, 3d, 1w."),
    author: str = typer.Option("ioc-oncall", "--author", help="Who silences (shown in Alertmanager)."),
    comment: str = typer.Option(..., "--comment", help="Why, for the next person on call."),
    create: bool = typer.Option(False, "--create", help="Create the silence through the API instead of only printing."),
    url: Optional[str] = typer.Option(None, "--url", help=URL_HELP),
) -> None:
    """Print the amtool command and the API call that silence a commune or a dossier; --create runs the call."""
    from sinks.alertmanager import AlertmanagerClient, AlertmanagerError
    from sinks.oncall import parse_duration, silence_plan

    try:
        plan = silence_plan(url or get_settings().alertmanager_url, commune_code=commune, dossier_id=dossier,
                            field=field, duration=parse_duration(duration), author=author, comment=comment)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    print("# with amtool (Debian package prometheus-alertmanager):")
    print(plan.amtool())
    print("# or with Alertmanager's API v2:")
    print(plan.curl())
    if not create:
        return
    try:
        with AlertmanagerClient(plan.url) as client:
            silence_id = client.create_silence(plan.matchers, plan.starts, plan.ends, plan.author, plan.comment)
    except AlertmanagerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    print(f"# created silence {silence_id}; lift it early with:")
    print(f"amtool silence expire --alertmanager.url={plan.url} {silence_id}")
