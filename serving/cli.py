"""`influence` subcommands of the serving package (merged into influence.cli)."""

import typer

app = typer.Typer()
