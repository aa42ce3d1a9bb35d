"""``onestop sla``: placeholder module, filled in by the SLA clock work."""

import typer

app = typer.Typer(no_args_is_help=True)
