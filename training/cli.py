"""`influence` subcommands of the training package (merged into influence.cli)."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


# --- registry: register, promote, rollback (training.registry) ---------------------------------


@app.command()
def register(
    bundle: Annotated[Path, typer.Option(help="trained ModelBundle folder")] = Path(
        "models/influence-score"
    ),
    metrics: Annotated[Path, typer.Option(help="evaluation of the bundle")] = Path(
        "reports/metrics.json"
    ),
    params_file: Annotated[Path, typer.Option("--params", help="params file")] = Path(
        "params.yaml"
    ),
) -> None:
    """Track the trained model as an MLflow run, register it as a new version of
    `influence-score` and give it `champion` if it passes the gate, else `challenger`."""
    from influence.params import load_params, raw_params
    from training.register_stage import run_register, stage_paths

    params = load_params(params_file)
    registered = run_register(
        stage_paths(params, bundle, metrics), params, raw_params(params_file)
    )
    typer.echo(
        f"influence-score version {registered.version} -> {registered.alias} "
        f"(run {registered.run.run_id}, {registered.run.model_uri})"
    )
    for reason in registered.decision.reasons:
        typer.echo(f"  gate: {reason}")


@app.command()
def promote(
    version: Annotated[int, typer.Option("--version", help="registered version to make champion")],
) -> None:
    """Make a version the champion on purpose (no gate); the replaced one is kept in its tags
    so `influence rollback` can return to it."""
    from mlflow.exceptions import MlflowException

    from training.registry import promote as promote_version

    try:
        previous = promote_version(version)
    except MlflowException as error:
        typer.echo(f"promote: {error.message}", err=True)
        raise typer.Exit(1) from None
    replaced = f" (was version {previous})" if previous else ""
    typer.echo(f"influence-score version {version} is champion{replaced}")


@app.command()
def rollback() -> None:
    """Give the champion alias back to the version the current champion replaced."""
    from training.registry import RegistryError
    from training.registry import rollback as rollback_champion

    try:
        version = rollback_champion()
    except RegistryError as error:
        typer.echo(f"rollback: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"influence-score version {version} is champion again")


@app.command("models")
def models_command() -> None:
    """Registered versions of influence-score, their aliases and champion history."""
    from mlflow.exceptions import MlflowException

    from training.registry import champion_history

    try:
        rows = champion_history()
    except MlflowException as error:  # no registered model yet
        typer.echo(f"models: {error}", err=True)
        raise typer.Exit(1) from None
    for row in rows:
        aliases = ",".join(row["aliases"]) or "-"
        typer.echo(
            f"v{row['version']:<4} {aliases:<20} gate={row['gate'] or '-':<7} "
            f"crowned_by={row['crowned_by'] or '-':<9} previous={row['previous_champion'] or '-'}"
        )
