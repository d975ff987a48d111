"""`influence` subcommands of the simulation package (merged into influence.cli)."""

import typer

app = typer.Typer()
