"""Pipeline commands: simulate, worker, sink, query, demo."""

import typer


def register(app: typer.Typer) -> None:
    pass
