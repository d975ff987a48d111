"""`influence simulate` and `influence realism` (merged into influence.cli).

Heavy imports stay inside the command bodies so `influence --help` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def simulate(
    users: Annotated[
        int | None, typer.Option(help="People in the world (default: params simulate.users).")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Days simulated, ending on simulate.end_date (default: simulate.days)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives the same tables.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Raw tables folder (default: params base.raw_dir).")
    ] = None,
    truth_out: Annotated[
        Path | None,
        typer.Option(help="Hidden-truth folder, for evaluation only (default: base.truth_dir)."),
    ] = None,
    corrupt_share: Annotated[
        float | None,
        typer.Option(
            help="Share of rows broken like a bad export; 0 gives a clean world "
            "(default: simulate.corrupt_share).",
            min=0,
            max=0.2,
        ),
    ] = None,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path(
        "params.yaml"
    ),
) -> None:
    """Simulate a multi-network social world; write its raw tables and, apart, its hidden truth."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from influence.params import load_params
    from simulation.config import WorldConfig
    from simulation.world import write_world

    params = load_params(params_file)
    cfg = WorldConfig.from_params(
        params, users=users, days=days, seed=seed, corrupt_share=corrupt_share
    )
    out = out or params.base.raw_dir
    truth_out = truth_out or params.base.truth_dir
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(f"simulating {cfg.users:,} users, day", total=cfg.days)
        summary = write_world(cfg, out, truth_out, on_day=lambda _day: progress.advance(task))
    typer.echo(
        f"wrote {out} ({cfg.start_date} .. {cfg.end_date}) and {truth_out} "
        f"in {summary.seconds:.1f} s"
    )
    for table, n in summary.rows.items():
        typer.echo(f"  {table:<13}{n:>12,} rows")
    if summary.corrupted:
        typer.echo(
            f"  corrupted    {sum(summary.corrupted.values()):>12,} rows "
            f"({len(summary.corrupted)} kinds, see {truth_out}/corruption.parquet)"
        )


@app.command()
def realism(
    raw: Annotated[
        Path | None, typer.Option(help="Raw tables folder (default: params base.raw_dir).")
    ] = None,
    real: Annotated[
        Path | None,
        typer.Option(
            help="Real Twitter sample (default: ../shared/data/twitter_profiles_peerindex.csv)."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="JSON report (default: <base.reports_dir>/realism.json)."),
    ] = None,
    params_file: Annotated[Path, typer.Option("--params", help="Parameters file.")] = Path(
        "params.yaml"
    ),
) -> None:
    """Put the simulated Twitter accounts beside real ones: quantiles and rank correlations."""
    import json

    from influence.params import load_params
    from simulation.realism import (
        compare,
        default_real_sample,
        read_raw_signals,
        read_real,
        render,
    )

    params = load_params(params_file)
    raw = raw or params.base.raw_dir
    real = real or default_real_sample()
    report = report or params.base.reports_dir / "realism.json"
    if not real.exists():
        raise typer.BadParameter(f"real sample not found: {real}", param_hint="--real")
    result = compare(read_raw_signals(raw), read_real(real))
    typer.echo(render(result))
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(result, indent=2) + "\n")
    typer.echo(f"wrote {report}")
    if not result["ok"]:
        raise typer.Exit(1)
