"""Build a world and stream it to disk day by day, atomically.

`build_world` and `iter_days` are pure (config in, arrays out); `write_world` is the only I/O:
it writes every chunk into temporary folders next to the targets and swaps them in at the end
(`influence.publish`), so a crash never leaves half a world behind. Files carry page checksums,
as a careful exporter's do, so a byte garbled on the way is detected by readers that verify them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.raw_schema import RAW_TABLES
from influence.publish import publishing_dir, write_parquet_file
from simulation import truth as T
from simulation.config import WorldConfig
from simulation.corrupt import corrupt
from simulation.engine import DayOutput, State, World, initial_state, simulate_day
from simulation.frames import accounts_frame, check_dtypes, day_frames, with_date
from simulation.networks import network_tables
from simulation.population import make_population

DAILY_TABLES = ("posts", "interactions", "profiles")
_STREAM_POPULATION, _STREAM_DAY, _STREAM_CORRUPT = 0, 1, 2


def _rng(cfg: WorldConfig, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, *stream]))


def build_world(cfg: WorldConfig) -> World:
    nets = network_tables()
    pop = make_population(cfg, nets, _rng(cfg, _STREAM_POPULATION))
    return World(cfg=cfg, nets=nets, pop=pop, start_weekday=cfg.start_date.weekday())


def iter_days(world: World) -> Iterator[tuple[DayOutput, State]]:
    """Each day's rows, and the state at its end. Every day has its own random stream."""
    state = initial_state(world)
    for day in range(world.cfg.days):
        out, state = simulate_day(world, state, day, _rng(world.cfg, _STREAM_DAY, day))
        yield out, state


@dataclass
class WriteSummary:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RAW_TABLES, 0))
    corrupted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(self.rows.values())


def _partition(root: Path, table: str, day) -> Path:
    path = root / table / f"date={day.isoformat()}"
    path.mkdir(parents=True, exist_ok=True)
    return path / "part-0.parquet"


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_file(frame, path, compression="zstd")


@contextmanager
def atomic_dirs(*targets: Path) -> Iterator[list[Path]]:
    """Temporary folders next to each target, swapped onto the targets only on success."""
    with ExitStack() as stack:
        yield [stack.enter_context(publishing_dir(target)) for target in targets]


def write_world(
    cfg: WorldConfig,
    out: Path,
    truth_out: Path,
    *,
    validate_every: int = 0,
    on_day: Callable[[int], None] | None = None,
) -> WriteSummary:
    """Simulate and write the raw tables under `out` and the hidden truth under `truth_out`.

    Every chunk's columns and dtypes are checked; on the first and last day (and every
    `validate_every`-th day if > 0) the clean chunks also go through the full pandera models,
    which costs ~0.4 s a day on the default world."""
    started = time.perf_counter()
    out, truth_out = Path(out), Path(truth_out)
    if truth_out.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"the truth folder {truth_out} must not be inside the raw folder {out}")
    summary = WriteSummary()
    world = build_world(cfg)
    export_time = datetime.combine(cfg.end_date + timedelta(days=1), datetime.min.time())
    with atomic_dirs(out, truth_out) as (raw_tmp, truth_tmp):
        accounts = accounts_frame(world)
        RAW_TABLES["accounts"].validate(accounts)
        _write(accounts, raw_tmp / "accounts" / "part-0.parquet")
        summary.rows["accounts"] = accounts.height

        influence, corruption = [], []
        for out_day, state in iter_days(world):
            day = cfg.start_date + timedelta(days=out_day.day)
            if out_day.day % 7 == 0:
                # Influence drifts at the end of a week's last day, so the state at the end of
                # a week's first day still holds that day's value.
                influence.append(T.influence_rows(world, day, state.influence))
            frames = day_frames(world, out_day)
            check_full = out_day.day in (0, cfg.days - 1) or (
                validate_every > 0 and out_day.day % validate_every == 0
            )
            crng = _rng(cfg, _STREAM_CORRUPT, out_day.day)
            for table in DAILY_TABLES:
                frame = frames[table]
                check_dtypes(table, frame)
                if check_full:
                    RAW_TABLES[table].validate(with_date(frame, day))
                frame, counts = corrupt(table, frame, cfg.corrupt_share, crng, export_time)
                check_dtypes(table, frame)
                corruption += [(table, day, kind, n) for kind, n in counts.items()]
                for kind, n in counts.items():
                    summary.corrupted[f"{table}.{kind}"] = (
                        summary.corrupted.get(f"{table}.{kind}", 0) + n
                    )
                _write(frame, _partition(raw_tmp, table, day))
                summary.rows[table] += frame.height
            if on_day:
                on_day(out_day.day)

        _write(T.users_truth(world), truth_tmp / "users.parquet")
        _write(T.accounts_truth(world), truth_tmp / "accounts.parquet")
        _write(
            pl.concat(influence).pipe(T.InfluenceTruth.validate), truth_tmp / "influence.parquet"
        )
        _write(T.corruption_rows(corruption), truth_tmp / "corruption.parquet")
    summary.seconds = time.perf_counter() - started
    return summary
