"""Settings of the HTTP service, read once from the environment (frozen).

| variable | meaning | default |
| --- | --- | --- |
| `INFLUENCE_API_KEY` | when set, every request outside the open paths needs `Authorization: Bearer <key>` | unset: no auth |
| `INFLUENCE_BUNDLE_DIR` | score with the `ModelBundle` saved in this folder instead of the registry's champion | unset: `load_champion()` |
| `INFLUENCE_MAX_BODY_BYTES` | request bodies above this get 413 | 16 MiB |
| `INFLUENCE_COMPILED_TREES` | score with the model's trees compiled to C (`serving.scorer`); `false`: LightGBM | true |
| `INFLUENCE_COMPILED_DIR` | cache of compiled trees (`training.compiled`) | `~/.cache/influence/compiled` |

The registry itself is found through `MLFLOW_TRACKING_URI` (see `training.tracking`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_BATCH = 1_000
"""Snapshots per /score_batch request."""
MAX_EXPLAINED_BATCH = 100
"""Snapshots per /score_batch request with explain=true: an explanation with its tips costs
~10 ms, so this bounds such a request to about a second, well inside REQUEST_TIMEOUT_S."""
REQUEST_TIMEOUT_S = 10
"""BentoML's per-request timeout (`traffic.timeout`): a request whose answer has not started by
then gets a 504. The longest valid request (1,000 snapshots without explanations, or 100 with)
takes well under a second. Enforced by `serving.guard.RequestTimeout`: BentoML's own timer held
each request's context until it fired (~5 KB a request, ~20 MB of a worker's RSS at 300
requests/s, creeping up with every new peak of the request rate); ours holds nothing."""

OPEN_PATHS: frozenset[str] = frozenset(
    {"/", "/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json"}
)
"""Paths that stay open when an API key is set: BentoML's health, readiness and Prometheus
endpoints (probes and scrapers carry no key) and the public contract (OpenAPI document and its
UI). Everything else, including endpoints added later, needs the key."""
OPEN_PREFIXES: tuple[str, ...] = ("/static_content/", "/assets/")


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    api_key: str | None = Field(None, validation_alias=AliasChoices("INFLUENCE_API_KEY"))
    bundle_dir: Path | None = Field(None, validation_alias=AliasChoices("INFLUENCE_BUNDLE_DIR"))
    max_body_bytes: int = Field(
        16 * 1024 * 1024, gt=0, validation_alias=AliasChoices("INFLUENCE_MAX_BODY_BYTES")
    )
    compiled_trees: bool = Field(True, validation_alias=AliasChoices("INFLUENCE_COMPILED_TREES"))


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
