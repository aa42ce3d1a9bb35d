"""``onestop gateway``: the HTTP ingest gateway for commune one-stop systems, and its tools.

    onestop gateway                 serve (same as `onestop gateway serve`)
    onestop gateway hash-token      hash a commune's bearer token for ONESTOP_GATEWAY_TOKENS_FILE
    onestop gateway openapi         write (or --check) producers/openapi/gateway.v1.json

The adapters (FastAPI, uvicorn, Kafka) are imported inside the commands.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from onestop.settings import Settings, get_settings
from onestop_cli.options import settings_options
from onestop_cli.output import write_or_check
from producers.gateway_settings import GatewaySettings

console = Console(stderr=True)
app = typer.Typer(help="HTTP ingest gateway: commune one-stop systems POST contract-v1 events.",
                  rich_markup_mode="rich")
# The checked-in copy of the spec, relative to a checkout (the served spec is built from the code).
SPEC_FILE = Path("producers/openapi/gateway.v1.json")


GATEWAY_SETTINGS = tuple(GatewaySettings.model_fields)
KAFKA_SETTINGS = ("kafka_bootstrap", "topic_events", "topic_dlq", "home", "log_level")


def _serve(settings: Settings, gateway_settings: GatewaySettings) -> None:
    from producers.gateway import run_gateway
    from producers.tokens import TokenFileError

    try:
        run_gateway(settings, gateway_settings)
    except TokenFileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """Without a sub-command, serve with the ONESTOP_GATEWAY_* settings (flags: `onestop gateway serve --help`)."""
    if ctx.invoked_subcommand is None:
        _serve(get_settings(), GatewaySettings())


@app.command()
@settings_options(GatewaySettings, *GATEWAY_SETTINGS, into="gateway_settings")
@settings_options(Settings, *KAFKA_SETTINGS, into="settings")
def serve(settings: Settings, gateway_settings: GatewaySettings) -> None:
    """Serve POST /v1/events, /healthz, /metrics and /openapi.json, publishing to Kafka.

    Every flag falls back to the ONESTOP_* variable shown beside it.
    """
    _serve(settings, gateway_settings)


def _read_token(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("token", hide_input=True)


@app.command("hash-token")
def hash_token(
    commune: Optional[str] = typer.Option(None, "--commune", "-c", help="Print a ready tokens-file line for this commune."),
    generate: bool = typer.Option(False, "--generate", "-g", help="Make a new random token, print it and its hash."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the token from the first line of stdin (no prompt)."),
) -> None:
    """Print the hash of a bearer token, to put in ONESTOP_GATEWAY_TOKENS_FILE.

    The token itself is never an argument, so it stays out of the shell history.
    """
    from producers.tokens import hash_token as make_hash, new_token

    if commune is not None and not re.fullmatch(r"\d{5}", commune, re.ASCII):
        console.print(f"[red]error:[/red] {commune!r} is not a 5-digit commune code")
        raise typer.Exit(2)
    token = new_token() if generate else _read_token(stdin)
    if not token:
        console.print("[red]error:[/red] empty token")
        raise typer.Exit(2)
    if generate:
        console.print("new token (hand it to the commune system; it is not stored anywhere):")
        print(token)
    hashed = make_hash(token)
    print(f'"{commune}": "{hashed}"' if commune else hashed)


@app.command()
def openapi(
    out: Path = typer.Option(SPEC_FILE, help="Where to write the OpenAPI document."),
    check: bool = typer.Option(False, "--check", help="Fail if the file differs from the served spec instead of writing it."),
) -> None:
    """Write (or --check) the gateway's OpenAPI document, as served at /openapi.json."""
    from producers.gateway import openapi_text

    text = openapi_text()
    write_or_check(out, text, check=check, command="onestop gateway openapi")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="gateway", help="HTTP ingest gateway for commune one-stop systems (POST /v1/events).")
