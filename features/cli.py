"""`influence` subcommands of the features package (merged into influence.cli)."""

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
            reports = stage.run_validation(raw, clean, rejects, now, on_progress)
        except stage.RawInputError as error:
            progress.stop()
            errors.print(f"[red]validate: {error}[/red]", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    stage.write_json(report, stage.report_payload(reports, now, threshold))
    console.print(_counts_table(reports, Table))
    failing = stage.over_threshold(reports, threshold)
    if failing:
        shares = ", ".join(f"{t} {reports[t].reject_share:.2%}" for t in failing)
        errors.print(
            f"[red]validate: rejected share above {threshold:.2%} in {shares}; "
            f"see {rejects} and {report}[/red]",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
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
