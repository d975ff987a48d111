"""The `influence` command line: one entry point, each package contributes its subcommands.

Heavy imports stay inside command bodies so `influence --help` answers at once.
"""

from __future__ import annotations

import typer

from features.cli import app as features_app
from serving.cli import app as serving_app
from simulation.cli import app as simulation_app
from training.cli import app as training_app

app = typer.Typer(
    help="Influence score: simulate, validate, build features, train, score and serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

for sub_app in (simulation_app, features_app, training_app, serving_app):
    app.add_typer(sub_app)


def main() -> None:  # pragma: no cover - console entry
    app()
