"""``onestop kafka``: placeholder module, filled in by the broker runner work."""

import typer

app = typer.Typer(no_args_is_help=True)
