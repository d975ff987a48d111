"""A small but real model for the service tests (see `serving.samples.stand_in_bundle`), and the
settings of the session's real server (conftest.py)."""

from __future__ import annotations

from pathlib import Path

from serving.samples import stand_in_bundle


def save_serving_bundle(directory: Path) -> Path:
    return stand_in_bundle(n=2000, seed=0, trees=40, compact=True).save(directory)


TEST_BODY_LIMIT = 4 * 1024 * 1024
"""INFLUENCE_MAX_BODY_BYTES of the session's real server."""
HEADER_TIMEOUT_S = 2.0
"""serve.header_timeout_seconds of the session's real server."""
