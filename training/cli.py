"""`influence` subcommands of the training package (merged into influence.cli).

train / evaluate / explain (training.train, training.evaluate, ModelBundle) and the registry
commands register / promote / rollback / models (training.registry). Commands only read, call
and write; heavy imports stay inside the command bodies so `influence --help` answers at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()

DEFAULT_MODEL_DIR = Path("models/influence-score")
REFERENCE_FILE = "reference.parquet"


def _load_data(features_dir: Path, params):
    from training.dataset import read_snapshots, read_training_rows, reference_snapshots
    from training.train import TrainingData

    rows = read_training_rows(features_dir)
    snapshots = read_snapshots(features_dir)
    reference, created = reference_snapshots(params.calibrate.reference_path, snapshots)
    if created:
        typer.echo(f"reference population: {params.calibrate.reference_path} (created)", err=True)
    data = TrainingData(
        rows=rows, snapshots=snapshots, reference=reference, windows=tuple(params.features.windows)
    )
    return data


def save_bundle(bundle, directory: Path, reference=None) -> Path:
    """Write the bundle (and its reference population) beside `directory`, then swap it in
    (influence.publish), so a reader never sees half a model."""
    from influence.publish import publishing_dir

    with publishing_dir(Path(directory)) as tmp:
        bundle.save(tmp)
        if reference is not None:
            reference.write_parquet(tmp / REFERENCE_FILE)
    return Path(directory)


def write_metrics(metrics: dict, path: Path) -> None:
    from influence.publish import write_json

    write_json(path, metrics, indent=2, sort_keys=True)


Features = Annotated[
    Path | None,
    typer.Option("--features", help="Features folder with train.parquet (default: base.features_dir)."),
]
ModelDir = Annotated[Path, typer.Option("--model-dir", help="Where the bundle lives.")]
Metrics = Annotated[
    Path | None, typer.Option(help="Metrics JSON (default: <base.reports_dir>/metrics.json).")
]
Truth = Annotated[
    Path | None, typer.Option(help="Hidden truth folder, evaluation only (default: base.truth_dir).")
]
ParamsFile = Annotated[Path, typer.Option("--params", help="Parameters file.")]


@app.command()
def train(
    features: Features = None,
    model_dir: ModelDir = DEFAULT_MODEL_DIR,
    metrics: Metrics = None,
    truth: Truth = None,
    evaluate: Annotated[
        bool, typer.Option("--evaluate/--no-evaluate", help="Also evaluate (baselines, stability).")
    ] = True,
    params_file: ParamsFile = Path("params.yaml"),
) -> None:
    """Train the model on the training set, calibrate it on the reference population, write the
    bundle, and (by default) evaluate it against the baselines with a stability retrain."""
    import time

    from influence.params import load_params
    from training.evaluate import evaluate_model
    from training.train import train_model

    params = load_params(params_file)
    features = features or params.base.features_dir
    started = time.perf_counter()
    data = _load_data(features, params)
    bundle = train_model(data, params)
    save_bundle(bundle, model_dir, data.reference)
    meta = bundle.metadata
    typer.echo(
        f"model {bundle.version}: {meta['n_features']} features, {meta['trees']} trees, "
        f"{meta['train_rows']:,} rows ({meta['augmented_rows']:,} partial) "
        f"in {meta['train_seconds']:.1f} s -> {model_dir}"
    )
    if not evaluate:
        return
    result = evaluate_model(bundle, data, params, truth_dir=truth or params.base.truth_dir)
    result["train_seconds"] = meta["train_seconds"]
    result["train_rows_per_second"] = meta["rows_per_second"]
    result["model_version"] = bundle.version
    path = metrics or params.base.reports_dir / "metrics.json"
    write_metrics(result, path)
    _print_metrics(result)
    typer.echo(f"metrics -> {path} ({time.perf_counter() - started:.1f} s in all)")


@app.command("evaluate")
def evaluate_command(
    features: Features = None,
    model_dir: ModelDir = DEFAULT_MODEL_DIR,
    metrics: Metrics = None,
    truth: Truth = None,
    stability: Annotated[
        bool, typer.Option("--stability/--no-stability", help="Retrain with train.stability_seed.")
    ] = True,
    params_file: ParamsFile = Path("params.yaml"),
) -> None:
    """Evaluate a saved bundle on the test split against the baselines."""
    from influence.params import load_params
    from training.bundle import ModelBundle
    from training.evaluate import evaluate_model

    params = load_params(params_file)
    bundle = ModelBundle.load(model_dir)
    data = _load_data(features or params.base.features_dir, params)
    result = evaluate_model(
        bundle, data, params, truth_dir=truth or params.base.truth_dir, stability=stability
    )
    result["model_version"] = bundle.version
    path = metrics or params.base.reports_dir / "metrics.json"
    write_metrics(result, path)
    _print_metrics(result)
    typer.echo(f"metrics -> {path}")


@app.command()
def explain(
    user: Annotated[str, typer.Option("--user", help="user_id to explain.")],
    as_of: Annotated[
        str | None, typer.Option(help="As-of date (YYYY-MM-DD); default: the latest.")
    ] = None,
    features: Features = None,
    model_dir: ModelDir = DEFAULT_MODEL_DIR,
    top: Annotated[int, typer.Option(help="Top signals to show.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    params_file: ParamsFile = Path("params.yaml"),
) -> None:
    """Explain one user's score from the training set's feature rows."""
    import polars as pl

    from influence.params import load_params
    from training.bundle import ModelBundle
    from training.dataset import read_training_rows

    params = load_params(params_file)
    bundle = ModelBundle.load(model_dir)
    rows = read_training_rows(features or params.base.features_dir).filter(pl.col("user_id") == user)
    if as_of is not None:
        rows = rows.filter(pl.col("as_of") == pl.lit(as_of).str.to_date())
    if rows.height == 0:
        typer.echo(f"no feature row for user {user!r}" + (f" at {as_of}" if as_of else ""), err=True)
        raise typer.Exit(1)
    row = rows.sort("as_of").tail(1)
    scored = bundle.score(row).row(0, named=True)
    e = bundle.explain(row, top_k=top)[0]
    if as_json:
        typer.echo(json.dumps({**e.to_dict(), **scored, "model_version": bundle.version}, default=str, indent=1))
        return
    typer.echo(
        f"user {user} as of {scored['as_of']}: score {scored['score']:.1f} "
        f"(percentile {scored['percentile']:.1f}{', provisional' if scored['provisional'] else ''}), "
        f"baseline {e.baseline:.1f}, model {bundle.version}"
    )
    typer.echo("by network: " + ", ".join(f"{k} {v:+.1f}" for k, v in sorted(e.networks.items(), key=lambda kv: -abs(kv[1]))))
    typer.echo("by family:  " + ", ".join(f"{k} {v:+.1f}" for k, v in sorted(e.families.items(), key=lambda kv: -abs(kv[1]))))
    for f in e.factors:
        value = "unknown" if f.value is None else f"{f.value:.3g}"
        typer.echo(f"  {f.points:+6.2f}  {f.name} = {value}  ({f.meaning})")


def _print_metrics(metrics: dict) -> None:
    from training.evaluate import BASELINES, METRICS

    header = f"{'metric':<20}{'model':>9}" + "".join(f"{b:>11}" for b in BASELINES)
    typer.echo(header)
    for m in METRICS:
        cells = "".join(f"{metrics.get(f'baseline_{b}_{m}', float('nan')):>11.4f}" for b in BASELINES)
        typer.echo(f"{m:<20}{metrics.get(m, float('nan')):>9.4f}{cells}")
    for key in ("score_mean", "score_p95", "score_max", "stability_median_abs_delta", "stability_p99_abs_delta"):
        if key in metrics:
            typer.echo(f"{key:<28}{metrics[key]:.3f}")



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
        f"(run {registered.run.run_name!r} {registered.run.run_id}, {registered.run.model_uri})"
    )
    for reason in registered.decision.reasons:
        typer.echo(f"  gate: {reason}")
    typer.echo("  compare it with the previous runs: `influence runs` (links into `make mlflow-ui`)")


@app.command()
def runs(
    last: Annotated[int, typer.Option(help="how many of the latest model runs")] = 5,
    compare: Annotated[int, typer.Option(help="runs in the Compare Runs link")] = 2,
    ui: Annotated[str, typer.Option(help="the MLflow UI (make mlflow-ui)")] = "http://127.0.0.1:5000",
) -> None:
    """The latest model runs with their headline metrics, and links into the MLflow UI: the
    runs table and Compare Runs of the newest `--compare` runs."""
    from datetime import UTC, datetime

    from training.run_report import METRIC_NAMES
    from training.tracking_store import compare_url, model_url, recent_runs, runs_url

    experiment_id, rows = recent_runs(last=last, metric_names=METRIC_NAMES)
    typer.echo(f"{'started (UTC)':<17} {'run':<28} {'registered':<18}"
               + "".join(f"{m:>18}" for m in METRIC_NAMES))
    for row in rows:
        started = datetime.fromtimestamp(row["started"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        cells = "".join(
            f"{'-' if row[m] is None else format(row[m], '.4f'):>18}" for m in METRIC_NAMES
        )
        typer.echo(f"{started:<17} {row['name'][:27]:<28} {row['registered_as'] or '-':<18}{cells}")
    typer.echo(f"runs:     {runs_url(experiment_id, ui)}")
    if len(rows) >= 2 and compare >= 2:
        typer.echo(f"compare:  {compare_url(experiment_id, [r['run_id'] for r in rows[:compare]], ui)}")
    from training.registry import MODEL_NAME

    typer.echo(f"registry: {model_url(MODEL_NAME, ui)}")


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
