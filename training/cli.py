"""`influence` subcommands of the training package (merged into influence.cli)."""

import typer

app = typer.Typer()
