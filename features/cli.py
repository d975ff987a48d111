"""`influence` subcommands of the features package (merged into influence.cli)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def validate(
    raw: Annotated[
        Path | None, typer.Option(help="Raw folder to read (default: params base.raw_dir).")
    ] = None,
    clean: Annotated[
        Path | None,
        typer.Option(help="Where accepted rows go (default: params base.clean_dir)."),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Where rejected rows go, one <table>.parquet each "
            "(default: params base.rejects_dir)."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="JSON report path (default: <base.reports_dir>/validate.json)."),
    ] = None,
    max_reject_share: Annotated[
        float | None,
        typer.Option(
            help="Fail when a table's rejected share exceeds this "
            "(default: params validate.max_reject_share).",
            min=0,
            max=1,
        ),
    ] = None,
    now: Annotated[
        datetime | None,
        typer.Option(help="Reference time (naive UTC) for 'in the future' (default: now)."),
    ] = None,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path(
        "params.yaml"
    ),
) -> None:
    """Check a raw folder: accepted rows to the clean folder, every rejected row with its reason
    to the rejects folder; fail when a table's rejected share passes the threshold."""
    from datetime import UTC

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    from features import validate_stage as stage
    from influence.params import load_params

    params = load_params(params_file)
    raw = raw or params.base.raw_dir
    clean = clean or params.base.clean_dir
    rejects = rejects or params.base.rejects_dir
    report = report or params.base.reports_dir / "validate.json"
    threshold = params.validate_.max_reject_share if max_reject_share is None else max_reject_share
    now = now or datetime.now(UTC).replace(tzinfo=None)
    console, errors = Console(), Console(stderr=True)

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task("validating", total=None)

        def on_progress(description: str, completed: int, total: int) -> None:
            progress.update(task, description=description, completed=completed, total=total)

        try:
            reports = stage.run_validation(raw, clean, rejects, now, on_progress, threshold)
        except (stage.RawInputError, stage.CleanSchemaError) as error:
            progress.stop()
            errors.print(f"[red]validate: {error}[/red]", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except stage.RejectShareExceeded as failed:  # nothing published: report it apart
            progress.stop()
            failed_report = report.with_name(f"{report.stem}.failed{report.suffix}")
            stage.write_json(failed_report, stage.report_payload(failed.reports, now, threshold))
            console.print(_counts_table(failed.reports, Table))
            errors.print(
                f"[red]validate: {failed}; report {failed_report}[/red]",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    stage.write_json(report, stage.report_payload(reports, now, threshold))
    console.print(_counts_table(reports, Table))
    unverified = sum(r.files - r.checksummed_files for r in reports.values())
    if unverified:
        errors.print(
            f"validate: {unverified} raw file(s) carry no page checksums: a garbled byte in them "
            "is caught only where it breaks decoding or contradicts the file's statistics",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"clean tables in {clean}, rejects in {rejects}, report {report}")


def _counts_table(reports, Table):
    table = Table(title="validate: rows per table and reject reason")
    for name in ("table", "reason", "rows", "share"):
        table.add_column(name, justify="left" if name in ("table", "reason") else "right")
    for name, r in reports.items():
        table.add_row(name, "rows in", f"{r.rows_in:,}", "")
        table.add_row("", "accepted", f"{r.accepted:,}", _share(r.accepted, r.rows_in))
        for reason, n in r.reasons.items():
            if n:
                table.add_row("", f"  {reason}", f"{n:,}", _share(n, r.rows_in))
        table.add_row(
            "", "rejected", f"{r.rejected:,}", _share(r.rejected, r.rows_in), end_section=True
        )
    return table


def _share(n: int, total: int) -> str:
    return f"{n / total:.2%}" if total else "-"


# --- features and signals (snapshots, featurize, labels) -----------------------------------------


@app.command("features")
def features_command(
    raw: Annotated[
        Path | None,
        typer.Option(help="Clean (or raw) tables folder (default: params base.clean_dir)."),
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Build one as-of date T (data strictly before T)."),
    ] = None,
    training: Annotated[
        bool,
        typer.Option(
            "--training/--no-training",
            help="Build every rolling as-of date with outcome labels (the default without --as-of).",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: params base.features_dir).")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="polars (streaming, default) or spark (local mode here).")
    ] = None,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path(
        "params.yaml"
    ),
) -> None:
    """Signal snapshots and validated features: one as-of date (--as-of T -> <out>/as_of=T/),
    or the training set (every as-of date with labels -> <out>/train.parquet)."""
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from features import stage
    from features.engine import make_engine
    from influence import publish
    from influence.params import load_params

    if as_of is not None and training:
        raise typer.BadParameter("use either --as-of (one date) or --training, not both")
    params = load_params(params_file)
    raw = raw or params.base.clean_dir
    out = out or params.base.features_dir
    engine_name = engine or params.features.engine
    if engine_name not in ("polars", "spark"):
        raise typer.BadParameter(f"--engine must be polars or spark, not {engine_name!r}")
    console = Console(stderr=True)
    started = time.perf_counter()
    publish.clean_stale_under(out)  # temporaries of killed runs, whatever they were writing
    with (
        Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        ) as progress,
        _stopping_on_corrupt_input(raw, console),
    ):
        runner = make_engine(engine_name)
        if as_of is not None:
            task = progress.add_task("features", total=2)
            tables = stage.features_for_date(
                runner, raw, as_of.date(), params,
                lambda step: progress.update(task, description=step, advance=1),
            )
            folder = stage.write_date(tables, out)
            summary = f"{tables.features.height:,} users x {tables.features.width - 2} signals"
            where = folder
        else:
            dates = stage.training_dates(raw, params)
            task = progress.add_task("training set", total=3 * len(dates))
            result = stage.training_set(
                runner, raw, out, params,
                lambda step: progress.update(task, description=step, advance=1),
            )
            summary = f"{result['rows']:,} rows over as-of dates {', '.join(result['as_of'])}"
            where = out / "train.parquet"
    typer.echo(f"features ({engine_name}): {summary} -> {where} in {time.perf_counter() - started:.1f} s")


@contextmanager
def _stopping_on_corrupt_input(folder: Path, console) -> Iterator[None]:
    """A failure caused by a corrupt input file ends the command with one line naming it (the
    stage has published nothing: its outputs are swapped in only at the end)."""
    from features.parquet_check import CorruptFile, naming_corrupt_files

    try:
        with naming_corrupt_files(folder):
            yield
    except CorruptFile as error:
        console.print(
            f"[red]features: {error}; nothing was written[/red]", highlight=False, soft_wrap=True
        )
        raise typer.Exit(1) from None


@app.command("signals")
def signals_command(
    format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path(
        "params.yaml"
    ),
) -> None:
    """The signal catalog: every model feature with its network, family, window, monotone
    direction and meaning (generated from the code that computes them)."""
    import json

    from features.featurize import catalog_frame
    from influence.params import load_params

    catalog = catalog_frame(load_params(params_file).features.windows)
    if format == "csv":
        text = catalog.write_csv()
    elif format == "json":
        text = json.dumps(catalog.to_dicts(), indent=1) + "\n"
    elif format == "table":
        text = _catalog_table(catalog)
    else:
        raise typer.BadParameter(f"--format must be table, csv or json, not {format!r}")
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"{catalog.height} signals -> {out}")


def _catalog_table(catalog) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{catalog.height} signals", show_lines=False)
    for name in ("name", "network", "family", "window_days", "monotone", "meaning"):
        table.add_column(name, overflow="fold")
    for row in catalog.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    buffer = StringIO()
    Console(file=buffer, width=200).print(table)
    return buffer.getvalue()
