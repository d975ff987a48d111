"""A small but real model for the service tests (see `serving.samples.stand_in_bundle`)."""

from __future__ import annotations

from pathlib import Path

from serving.samples import stand_in_bundle


def save_serving_bundle(directory: Path) -> Path:
    return stand_in_bundle(n=2000, seed=0, trees=40, compact=True).save(directory)
