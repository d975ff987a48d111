"""The features stage through the CLI: one date, the training set, atomic writes."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import polars as pl
import pytest
from typer.testing import CliRunner
from worldkit import T, random_world

from features import stage
from features.feature_schema import validate_features
from features.featurize import feature_names
from features.snapshot import validate_snapshots
from influence.cli import app


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return random_world(7, users=25, first=-120, last=-1).write(tmp_path_factory.mktemp("raw"))


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "features:\n  n_as_of: 2\n  pagerank_iterations: 5\nlabels:\n  horizon_days: 14\n"
    )
    return path


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_one_date_writes_validated_snapshots_and_features(raw, tmp_path, params_file):
    out = tmp_path / "features"
    result = run(
        "features",
        "--raw",
        str(raw),
        "--as-of",
        "2026-03-20",
        "--out",
        str(out),
        "--params",
        str(params_file),
    )
    assert "signals" in result.output
    folder = out / "as_of=2026-03-20"
    snapshots = validate_snapshots(pl.read_parquet(folder / "snapshots.parquet"))
    features = validate_features(pl.read_parquet(folder / "features.parquet"))
    assert snapshots["as_of"].unique().to_list() == features["as_of"].unique().to_list()
    assert features.height == snapshots["user_id"].n_unique()
    assert [p.name for p in out.iterdir()] == ["as_of=2026-03-20"]  # no temporary left


def test_training_set_has_every_as_of_date_with_labels(raw, tmp_path, params_file):
    out = tmp_path / "features"
    run(
        "features", "--raw", str(raw), "--training", "--out", str(out), "--params", str(params_file)
    )
    train = pl.read_parquet(out / "train.parquet")
    assert train.columns[:2] == ["user_id", "as_of"]
    assert set(feature_names()) <= set(train.columns) and "label" in train.columns
    dates = sorted(train["as_of"].unique().to_list())
    assert dates[-1] == T - timedelta(days=14)  # the data ends at T (exclusive): T_last = end - H
    assert len(dates) == 2 and train["label"].null_count() == 0
    labels = pl.read_parquet(out / "labels.parquet")
    assert labels.height == train.height
    assert pl.read_parquet(out / "snapshots.parquet")["as_of"].n_unique() == 2
    assert pl.read_csv(out / "catalog.csv")["name"].to_list() == feature_names()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_crash_leaves_no_half_written_table(raw, tmp_path, params_file, monkeypatch):
    out = tmp_path / "features"
    calls = []
    real = stage.labels_for_date

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(stage, "labels_for_date", crash_on_second)
    result = CliRunner().invoke(
        app,
        [
            "features",
            "--raw",
            str(raw),
            "--training",
            "--out",
            str(out),
            "--params",
            str(params_file),
        ],
    )
    assert result.exit_code != 0
    assert not (out / "train.parquet").exists()
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_as_of_and_training_together_are_refused(raw, tmp_path):
    result = CliRunner().invoke(
        app, ["features", "--raw", str(raw), "--as-of", "2026-03-20", "--training"]
    )
    assert result.exit_code != 0 and "either" in result.output


class Recorder:
    """A `stage.Profile` that computes every piece and remembers the names, in order."""

    def __init__(self, engine) -> None:
        self.engine, self.names = engine, []

    def part(self, name, frame):
        self.names.append(name)
        return self.engine.materialize(frame)

    @contextmanager
    def step(self, name):
        self.names.append(name)
        yield


def test_a_profiled_date_gives_the_same_tables_and_names_every_piece(raw):
    from features.engine import PolarsEngine
    from influence.params import load_params

    params, as_of = load_params(), T - timedelta(days=10)
    plain = stage.features_for_date(PolarsEngine(), raw, as_of, params)
    recorder = Recorder(PolarsEngine())
    profiled = stage.features_for_date(PolarsEngine(), raw, as_of, params, profile=recorder)
    for ours, theirs in [
        (plain.snapshots, profiled.snapshots),
        (plain.features, profiled.features),
    ]:
        assert ours.columns == theirs.columns and ours.height == theirs.height
        for column in ours.columns:  # float sums may add up in another order: 1e-12
            if ours[column].dtype.is_float():
                diff = (ours[column] - theirs[column]).abs() / (1 + theirs[column].abs())
                assert ours[column].is_null().equals(theirs[column].is_null()), column
                assert (diff.fill_null(0.0) <= 1e-12).all(), column
            else:
                assert ours[column].equals(theirs[column]), column
    pieces = {"accounts", "read", "selectivity", "pairs", "pagerank", "audience", "activity"}
    pieces |= {"received", "sent", "unique_engagers", "conversations", "assemble", "to_long"}
    steps = {"collect", "validate_snapshots", "featurize", "validate_features"}
    assert set(recorder.names) == pieces | steps
