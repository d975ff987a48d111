"""`influence` subcommands of the serving package (merged into influence.cli)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()



@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.", min=1, max=65535)] = 3000,
    bundle: Annotated[
        Path | None,
        typer.Option(help="Serve this saved ModelBundle folder instead of the registry's "
                     "champion (sets INFLUENCE_BUNDLE_DIR).", exists=True, file_okay=False),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (each loads the model); default: params.yaml "
                     "serve.workers.", min=1, max=32),
    ] = None,
) -> None:
    """Serve the champion model over HTTP on 127.0.0.1 (BentoML): POST /score, /score_batch,
    GET /users/{id}/score and /history; OpenAPI at /docs.json, its page at /. Set
    INFLUENCE_API_KEY (16+ characters) to require `Authorization: Bearer <key>`. The model, the
    store and the key are checked first: a problem ends the command within seconds (status 2),
    naming the file or store."""
    from serving.launch import HOST, QUIET_ENV, SERVICE, serve_command

    env = {**os.environ, **QUIET_ENV}
    if bundle is not None:
        env["INFLUENCE_BUNDLE_DIR"] = str(bundle.resolve())
    typer.echo(_welcome(f"http://{HOST}:{port}", bool(env.get("INFLUENCE_API_KEY"))), err=True)
    sys.stderr.flush()
    command = serve_command(SERVICE, port, workers)
    os.execve(command[0], command, env)


CURL_EXAMPLE = (
    '{"snapshot": {"user_id": "alice", "networks": {"twitter": {"window_days": 30, '
    '"followers": 1200, "posts": 90, "posts_with_media": 20, '
    '"received": {"like": 800, "retweet": 120, "reply": 40}, "unique_engagers": 350}, '
    '"linkedin": {"window_days": 30, "followers": 500, "received": {"recommendation": 3}}}}}'
)


def _welcome(url: str, with_key: bool) -> str:
    auth = ' -H "Authorization: Bearer $INFLUENCE_API_KEY"' if with_key else ""
    return (
        f"influence score service on {url}  (API page {url}/, OpenAPI {url}/docs.json, ready "
        f"at {url}/readyz)\ntry:\n  curl -s -X POST {url}/score -H 'Content-Type: "
        f"application/json'{auth} \\\n    -d '{CURL_EXAMPLE}'\n"
    )


# --- score history: score-daily, backfill, compare-models (serving.daily) ------------------------

_DATE = ["%Y-%m-%d"]


def _daily_context(params_file: Path, store: Path | None, bundle: Path | None):
    """(params, store, bundle, rule) for the daily commands; the bundle is the registry's
    champion unless a saved bundle folder is given."""
    from influence.params import load_params
    from serving.daily import SmoothingRule
    from serving.history import STORE_ENV, HistoryStore
    from training.bundle import ModelBundle

    params = load_params(params_file)
    settings = params.score_daily
    path = store or Path(os.environ.get(STORE_ENV) or settings.store)
    if bundle is not None:
        model = ModelBundle.load(bundle)
    else:
        from training.registry import RegistryError, load_champion

        try:
            model = load_champion()
        except RegistryError as error:
            typer.echo(f"score history: {error}", err=True)
            raise typer.Exit(1) from None
    model = _with_compiled_trees(model)
    return params, HistoryStore(path, settings.lock_timeout_seconds), model, SmoothingRule.from_params(settings)


def _with_compiled_trees(model):
    """The batch path predicts with the model's trees compiled to C when it can
    (`training.compiled`: same numbers, checked), else with LightGBM; says which."""
    compiled = model.with_compiled_trees()
    trees = compiled.compiled_trees
    how = (f"compiled trees ({'built in ' + str(trees.compile_seconds) + ' s' if trees.compile_seconds else 'cached'})"
           if trees is not None else "LightGBM (compiled trees unavailable)")
    typer.echo(f"predictor: {how}", err=True)
    return compiled


@contextmanager
def _naming_corrupt_clean(params, command: str, kept: str = "") -> Iterator[None]:
    """A failure caused by a corrupt clean file ends the command with one line naming the file
    (polars' decoding errors name none); the day being written is not (one transaction)."""
    from features.parquet_check import CorruptFile, naming_corrupt_files

    try:
        with naming_corrupt_files(params.base.clean_dir):
            yield
    except CorruptFile as error:
        typer.echo(f"{command}: {error}{kept}", err=True)
        raise typer.Exit(1) from None


def _last_data_day(params) -> date:
    """The default as-of date: the day after the last day of clean data."""
    from features.engine import data_end

    return data_end(params.base.clean_dir)


_BUNDLE_HELP = "Score with this saved ModelBundle folder instead of the registry's champion."
_STORE_HELP = "History store file (default: $INFLUENCE_HISTORY_STORE or params score_daily.store)."


@app.command("score-daily")
def score_daily(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=_DATE,
                     help="Snapshot date T (data strictly before T); default: the day after the "
                     "last day of clean data."),
    ] = None,
    bundle: Annotated[Path | None, typer.Option(help=_BUNDLE_HELP, exists=True, file_okay=False)] = None,
    store: Annotated[Path | None, typer.Option(help=_STORE_HELP)] = None,
    points: Annotated[bool, typer.Option(help="Store per-network points (TreeSHAP).")] = True,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path("params.yaml"),
) -> None:
    """Score every user as of T with the champion and write (or replace) day T of the score
    history: published (smoothed) score, model score, percentile, points per network."""
    import json

    from serving.daily import score_day, snapshot_builder

    params, history, model, rule = _daily_context(params_file, store, bundle)
    day = as_of.date() if as_of else _last_data_day(params)
    with _naming_corrupt_clean(params, "score-daily", f"; day {day} was not written"):
        report = score_day(day, build=snapshot_builder(params), bundle=model, store=history,
                           rule=rule, windows=params.features.windows, points=points)
    typer.echo(json.dumps(report.as_dict()))
    typer.echo(f"{report.users:,} users scored as of {day} with model {report.model_version} "
               f"({report.changed:,} published scores changed) in {report.seconds['total']:.1f} s; "
               f"history: {history.path}", err=True)


@app.command("backfill")
def backfill_command(
    first: Annotated[
        datetime | None,
        typer.Option("--from", formats=_DATE,
                     help="First as-of date (default: --to minus score_daily.backfill_days - 1)."),
    ] = None,
    last: Annotated[
        datetime | None,
        typer.Option("--to", formats=_DATE,
                     help="Last as-of date (default: the day after the last day of clean data)."),
    ] = None,
    bundle: Annotated[Path | None, typer.Option(help=_BUNDLE_HELP, exists=True, file_okay=False)] = None,
    store: Annotated[Path | None, typer.Option(help=_STORE_HELP)] = None,
    points: Annotated[
        str, typer.Option(help="Days that get per-network points (TreeSHAP, the costly part): "
                          "all, last or none.")
    ] = "last",
    skip_existing: Annotated[
        bool, typer.Option(help="Skip days the store already has from the same model (a re-run "
                           "only fills what is missing).")
    ] = False,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path("params.yaml"),
) -> None:
    """Score every day of [--from, --to] in order (each day smooths on the one before; each day is
    its own transaction, so an interrupted backfill keeps the days it finished)."""
    from datetime import timedelta

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from serving.daily import PointsFor, backfill, days_in, snapshot_builder

    params, history, model, rule = _daily_context(params_file, store, bundle)
    end = last.date() if last else _last_data_day(params)
    start = first.date() if first else end - timedelta(days=params.score_daily.backfill_days - 1)
    try:
        days = days_in(start, end)
        points = PointsFor(points)
    except ValueError as error:
        typer.echo(f"backfill: {error}", err=True)
        raise typer.Exit(2) from None
    console = Console(stderr=True)
    if skip_existing:
        done = set(history.days(model.version))
        days = [d for d in days if d not in done]
        if not days:
            console.print(f"backfill: {start}..{end} already in {history.path} "
                          f"(model {model.version})")
            return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    kept = "; the days before it that were written are kept"
    with Progress(*columns, console=console) as progress, _naming_corrupt_clean(params, "backfill", kept):
        task = progress.add_task(f"backfill {start}..{end}", total=len(days))

        def on_day(report) -> None:
            progress.update(task, advance=1, description=f"{report.day}: {report.users:,} users")

        reports = backfill(days, on_day=on_day, build=snapshot_builder(params), bundle=model,
                           store=history, rule=rule, windows=params.features.windows, points=points)
    total = sum(r.seconds["total"] for r in reports)
    console.print(f"{len(reports)} days of {start}..{end} written to {history.path} in {total:.1f} s "
                  f"with model {model.version}")


@app.command("compare-models")
def compare_models_command(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=_DATE,
                     help="Snapshot date T; default: the day after the last day of clean data."),
    ] = None,
    champion: Annotated[
        Path | None,
        typer.Option(help="Champion bundle folder (default: the registry's `champion`).",
                     exists=True, file_okay=False),
    ] = None,
    challenger: Annotated[
        Path | None,
        typer.Option(help="Challenger bundle folder (default: the registry's `challenger`).",
                     exists=True, file_okay=False),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="JSON report (default: params score_daily.compare_report).")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when the challenger moves scores beyond the bounds.")
    ] = False,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path("params.yaml"),
) -> None:
    """Score the same snapshots with champion and challenger and report how scores would move:
    median/p90/p99 |Δ|, share moved by more than 1 and 5 points, the biggest movers."""

    from influence import publish
    from influence.params import load_params
    from serving.daily import CompareRule, compare_models, snapshot_builder
    from training.bundle import ModelBundle

    params = load_params(params_file)
    settings = params.score_daily
    try:
        models = [ModelBundle.load(path) if path else _registry_bundle(alias)
                  for path, alias in ((champion, "champion"), (challenger, "challenger"))]
    except LookupError as error:
        typer.echo(f"compare-models: {error}", err=True)
        raise typer.Exit(1) from None
    day = as_of.date() if as_of else _last_data_day(params)
    with _naming_corrupt_clean(params, "compare-models"):
        snapshots = snapshot_builder(params)(day)
    result = compare_models(snapshots, *models, CompareRule.from_params(settings),
                            params.features.windows)
    path = report or settings.compare_report
    publish.write_json(path, result)
    _print_comparison(result, path)
    if strict and not result["within_bounds"]:
        raise typer.Exit(1)


def _registry_bundle(alias: str):
    from mlflow.exceptions import MlflowException

    from training.registry import MODEL_NAME, load_bundle, model_uri

    try:
        return load_bundle(model_uri(alias))
    except MlflowException as error:
        raise LookupError(f"registered model {MODEL_NAME!r} has no {alias!r} version to load "
                          f"({error.message}); pass --{alias} with a saved bundle folder") from None


def _print_comparison(result: dict, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    d = result["delta"]
    table = Table(title=f"compare-models as of {result['as_of']}: "
                  f"{result['champion_version']} -> {result['challenger_version']}")
    table.add_column("users")
    table.add_column("median |Δ|", justify="right")
    table.add_column("p90 |Δ|", justify="right")
    table.add_column("p99 |Δ|", justify="right")
    table.add_column("max |Δ|", justify="right")
    table.add_column("mean Δ", justify="right")
    for threshold in result["share_moved_more_than"]:
        table.add_column(f"moved > {threshold}", justify="right")
    table.add_row(f"{result['users']:,}", f"{d['median_abs']:.2f}", f"{d['p90_abs']:.2f}",
                  f"{d['p99_abs']:.2f}", f"{d['max_abs']:.2f}", f"{d['mean']:+.2f}",
                  *(f"{share:.1%}" for share in result["share_moved_more_than"].values()))
    console = Console()
    console.print(table)
    movers = Table(title="biggest movers")
    for name in ("user_id", "champion", "challenger", "Δ"):
        movers.add_column(name, justify="left" if name == "user_id" else "right")
    for m in result["biggest_movers"][:10]:
        movers.add_row(m["user_id"], f"{m['champion']:.2f}", f"{m['challenger']:.2f}", f"{m['delta']:+.2f}")
    console.print(movers)
    verdict = "within" if result["within_bounds"] else "OUTSIDE"
    b = result["bounds"]
    console.print(f"{verdict} the promotion bounds (median |Δ| <= {b['max_median_abs_delta']}, "
                  f"p99 |Δ| <= {b['max_p99_abs_delta']}); report: {path}")
