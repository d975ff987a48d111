"""`influence simulate` and `influence realism` (merged into influence.cli).

Heavy imports stay inside the command bodies so `influence --help` answers at once.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()


@app.command()
def simulate(
    users: int = typer.Option(None, help="people in the world [params.yaml simulate.users]"),
    days: int = typer.Option(None, help="days simulated, ending on simulate.end_date"),
    seed: int = typer.Option(None, help="random seed; the same seed gives the same tables"),
    out: Path = typer.Option(None, help="raw tables folder [base.raw_dir]"),
    truth_out: Path = typer.Option(None, help="hidden-truth folder, evaluation only "
                                              "[base.truth_dir]"),
    corrupt_share: float = typer.Option(None, help="share of rows broken like a bad export; "
                                                   "0 gives a clean world"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params", help="params file"),
) -> None:
    """Simulate a multi-network social world and write its raw tables (and hidden truth)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from influence.params import load_params
    from simulation.config import WorldConfig
    from simulation.world import write_world

    params = load_params(params_file)
    cfg = WorldConfig.from_params(params, users=users, days=days, seed=seed,
                                  corrupt_share=corrupt_share)
    out = out or params.base.raw_dir
    truth_out = truth_out or params.base.truth_dir
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn()) as progress:
        task = progress.add_task(f"simulating {cfg.users:,} users", total=cfg.days)
        summary = write_world(cfg, out, truth_out,
                              on_day=lambda _day: progress.advance(task))
    typer.echo(f"wrote {out} ({cfg.start_date} .. {cfg.end_date}) and {truth_out} "
               f"in {summary.seconds:.1f} s")
    for table, n in summary.rows.items():
        typer.echo(f"  {table:<13}{n:>12,} rows")
    if summary.corrupted:
        bad = sum(summary.corrupted.values())
        typer.echo(f"  corrupted    {bad:>12,} rows ({', '.join(sorted(summary.corrupted))})")


@app.command()
def realism(
    raw: Path = typer.Option(None, help="raw tables folder [base.raw_dir]"),
    real: Path = typer.Option(None, help="real Twitter sample "
                                         "[../shared/data/twitter_profiles_peerindex.csv]"),
    report: Path = typer.Option(None, help="JSON report [<base.reports_dir>/realism.json]"),
    params_file: Path = typer.Option(Path("params.yaml"), "--params", help="params file"),
) -> None:
    """Compare the simulated Twitter accounts with real ones (quantiles, rank correlations)."""
    import json

    from influence.params import load_params
    from simulation.realism import compare, default_real_sample, read_raw_signals, read_real
    from simulation.realism import render

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
