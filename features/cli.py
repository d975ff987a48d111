"""`influence` subcommands of the features package (merged into influence.cli)."""

import typer

app = typer.Typer()
