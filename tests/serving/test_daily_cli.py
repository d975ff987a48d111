"""`influence score-daily`, `backfill` and `compare-models` end to end on a tiny simulated world:
the feature pipeline's real snapshot builder, saved bundles, a store and a report under tmp_path."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from influence.cli import app
from serving.history import HistoryStore
from serving.samples import stand_in_bundle
from simulation.config import WorldConfig
from simulation.world import write_world

REPO = Path(__file__).resolve().parents[2]
END = date(2026, 11, 1)
AS_OF = END + timedelta(days=1)  # the default as-of date: the day after the last day of data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("daily-cli")
    write_world(
        WorldConfig(users=120, days=95, end_date=END, corrupt_share=0.0), root / "clean", root / "truth"
    )
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["base"]["clean_dir"] = str(root / "clean")
    params["score_daily"]["store"] = str(root / "history" / "scores.duckdb")
    params["score_daily"]["compare_report"] = str(root / "reports" / "compare.json")
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for seed in (0, 1):
        stand_in_bundle(n=800, seed=seed, trees=20).save(root / f"bundle{seed}")
    return {
        "params": root / "params.yaml",
        "store": root / "history" / "scores.duckdb",
        "report": root / "reports" / "compare.json",
        "champion": root / "bundle0",
        "challenger": root / "bundle1",
    }


def _invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result


def test_score_daily_backfill_and_compare_models(world: dict[str, Path]):
    common = ("--params", world["params"], "--bundle", world["champion"])

    first = _invoke("score-daily", *common)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout.splitlines()[0])
    assert report["day"] == AS_OF.isoformat() and report["users"] > 50

    store = HistoryStore(world["store"])
    rows = store.day(AS_OF).drop("written_at")
    again = _invoke("score-daily", *common, "--as-of", AS_OF.isoformat())
    assert again.exit_code == 0, again.output
    # a re-run replaces the day as it was (up to the builder's float noise in the last place)
    assert_frame_equal(store.day(AS_OF).drop("written_at"), rows, check_exact=False, rel_tol=1e-9)

    filled = _invoke("backfill", *common, "--from", (AS_OF - timedelta(days=2)).isoformat(),
                     "--to", (AS_OF - timedelta(days=1)).isoformat(), "--points", "none")
    assert filled.exit_code == 0, filled.output
    assert store.days() == [AS_OF - timedelta(days=k) for k in (2, 1, 0)]
    written_at = store.runs()["written_at"].to_list()
    skipped = _invoke("backfill", *common, "--from", (AS_OF - timedelta(days=2)).isoformat(),
                      "--skip-existing")
    assert skipped.exit_code == 0 and "already in" in skipped.output
    assert store.runs()["written_at"].to_list() == written_at

    compared = _invoke("compare-models", "--params", world["params"],
                       "--champion", world["champion"], "--challenger", world["challenger"])
    assert compared.exit_code == 0, compared.output
    written = json.loads(world["report"].read_text())
    assert written["users"] == rows.height
    assert set(written["share_moved_more_than"]) == {"1", "5"}
    assert "biggest movers" in compared.stdout


def test_backfill_refuses_a_reversed_range(world: dict[str, Path]):
    result = _invoke("backfill", "--params", world["params"], "--bundle", world["champion"],
                     "--from", "2026-10-10", "--to", "2026-10-01")
    assert result.exit_code == 2
    assert "before" in result.output
