"""Settings of the HTTP service: read once from the environment (frozen), the `serve:` section of
params.yaml, and the limits of the contract.

| variable | meaning | default |
| --- | --- | --- |
| `INFLUENCE_API_KEY` | when set, every request outside the open paths needs `Authorization: Bearer <key>`; at least 16 printable ASCII characters, no spaces (an empty or unusable key is refused at start) | unset: no auth |
| `INFLUENCE_BUNDLE_DIR` | score with the `ModelBundle` saved in this folder instead of the registry's champion | unset: `load_champion()` |
| `INFLUENCE_MAX_BODY_BYTES` | request bodies above this get 413 | 16 MiB |
| `INFLUENCE_COMPILED_TREES` | score with the model's trees compiled to C (`serving.scorer`); `false`: LightGBM | true |
| `INFLUENCE_COMPILED_DIR` | cache of compiled trees (`training.compiled`) | `~/.cache/influence/compiled` |

The registry itself is found through `MLFLOW_TRACKING_URI` (see `training.tracking`).
params.yaml `serve:` (`ServeParams`): workers, keep-alive and header timeouts, read by the
launcher (`serving.launch`).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_BATCH = 1_000
"""Snapshots per /score_batch request."""
MAX_EXPLAINED_BATCH = 100
"""Snapshots per /score_batch request with explain=true: an explanation with its tips costs
~10 ms, so this bounds such a request to about a second, well inside REQUEST_TIMEOUT_S."""
REQUEST_TIMEOUT_S = 10
"""BentoML's per-request timeout (`traffic.timeout`): a request whose answer has not started by
then gets a 504. The longest valid request (1,000 snapshots without explanations, or 100 with)
takes well under a second. Enforced by `serving.runtime.RequestTimeout`: BentoML's own timer held
each request's context until it fired (~5 KB a request, ~20 MB of a worker's RSS at 300
requests/s, creeping up with every new peak of the request rate); ours holds nothing."""

# --- the shape of a JSON body, checked before it is parsed (`serving.bodyshape`) ----------------
MAX_DEPTH = 10
"""Nesting of objects and arrays (the deepest valid body, a batch of snapshots with lists of
windows, has 7 levels)."""
MAX_KEYS_PER_OBJECT = 32
"""Keys of one object (the widest valid object, a network's window, has 20 fields)."""
MAX_ITEMS_PER_ARRAY = 2 * MAX_BATCH
"""Items of one array: above the batch's own limit, so that a batch a little too long gets the
contract's error naming `snapshots`."""
MAX_KEYS_PER_SNAPSHOT = 2_000
"""Keys inside any object below the top level of the body (a snapshot, a batch item): a full
snapshot of 8 networks with 4 windows each has ~1,500. This is what bounds the cost of
validating one snapshot, errors included (~2,000 errors at most)."""

# --- error answers (`serving.errors`) ------------------------------------------------------------
MAX_LISTED_ERRORS = 20
"""Field errors listed in one answer; the summary counts the rest."""
MAX_LISTED_ITEM_ERRORS = 5
"""Field errors listed per invalid batch item; its summary counts the rest."""
MAX_BATCH_ERRORS = 2_000
"""Field errors of all items of one batch: past this the batch as a whole is refused (400)
rather than validated to the end, which bounds the work an invalid batch can cost (an error
costs ~10x a valid key; one snapshot's worth, `MAX_KEYS_PER_SNAPSHOT`, always fits)."""

OPEN_PATHS: frozenset[str] = frozenset(
    {"/", "/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json"}
)
"""Paths that stay open when an API key is set: BentoML's health, readiness and Prometheus
endpoints (probes and scrapers carry no key) and the public contract (OpenAPI document and its
UI). Everything else, including endpoints added later, needs the key."""
OPEN_PREFIXES: tuple[str, ...] = ("/static_content/", "/assets/")

MIN_API_KEY_LENGTH = 16
_USABLE_KEY = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: fits a header as sent


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    api_key: str | None = Field(None, validation_alias=AliasChoices("INFLUENCE_API_KEY"))
    bundle_dir: Path | None = Field(None, validation_alias=AliasChoices("INFLUENCE_BUNDLE_DIR"))
    max_body_bytes: int = Field(
        16 * 1024 * 1024, gt=0, validation_alias=AliasChoices("INFLUENCE_MAX_BODY_BYTES")
    )
    compiled_trees: bool = Field(True, validation_alias=AliasChoices("INFLUENCE_COMPILED_TREES"))

    @field_validator("api_key")
    @classmethod
    def _usable_key(cls, key: str | None) -> str | None:
        """An empty key used to turn auth off without a word: a key set by mistake (an empty
        variable, a stray space) must stop the service, not open it."""
        if key is None:
            return None
        if not key.strip():
            raise ValueError("INFLUENCE_API_KEY is set but empty: unset it to serve without a "
                             f"key, or set a key of at least {MIN_API_KEY_LENGTH} characters")
        if len(key) < MIN_API_KEY_LENGTH or not _USABLE_KEY.fullmatch(key):
            raise ValueError(f"INFLUENCE_API_KEY is unusable: it needs at least "
                             f"{MIN_API_KEY_LENGTH} printable ASCII characters and no spaces "
                             f"(got {len(key)} characters)")
        return key


def is_open_path(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class ServeParams(BaseModel):
    """params.yaml `serve:`: how the launcher runs the service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int = Field(1, ge=1, le=32)
    """Worker processes (each loads the model: ~350 MB of RSS with the default model)."""
    keep_alive_seconds: int = Field(5, ge=1, le=300)
    """An idle keep-alive connection is closed after this long."""
    header_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """A connection must send a whole request head (line and headers) within this long of
    opening or of starting the request, else it is closed (`serving.runtime`)."""


def serve_params(path: Path | str = Path("params.yaml")) -> ServeParams:
    """The `serve:` section of params.yaml (defaults when the file or the section is absent)."""
    from influence.params import load_params

    section = (load_params(path).model_extra or {}).get("serve") or {}
    return ServeParams.model_validate(section)
