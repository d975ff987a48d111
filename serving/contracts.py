"""Request and response contracts of the HTTP service (pydantic; the OpenAPI document is made
from them).

The snapshot itself is `features.snapshot.SignalSnapshot`: the same contract the batch pipeline
writes, so a client can send exactly what the pipeline would have built.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from features.snapshot import SignalSnapshot
from serving.errors import FieldError
from serving.openapi import nullable_fields
from serving.rounding import rounded_score
from serving.settings import MAX_BATCH, MAX_EXPLAINED_BATCH
from serving.snapshot_doc import DocumentedAsSnapshot


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=nullable_fields)


class _Answer(_Contract):
    """A response part whose unset optional fields are left out of the JSON rather than sent as
    null (`explain=false` answers have no `networks` key at all; a batch item has `result` or
    `errors`). Absent keys are what the document says and what BentoML's client expects."""

    # no return annotation: the document keeps the model's own schema
    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: Any):
        return {k: v for k, v in handler(self).items() if v is not None}


# --- requests ------------------------------------------------------------------------------------


class ScoreRequest(_Contract):
    snapshot: Annotated[SignalSnapshot, DocumentedAsSnapshot()]
    explain: bool = Field(
        True, strict=True, description="false skips the explanation and the tips (faster)"
    )


# A batch item is any JSON value on the way in (each item is validated on its own, so an
# invalid one gets its own errors and does not sink the others), documented as the
# SignalSnapshot it is meant to be.
SnapshotItem = Annotated[Any, DocumentedAsSnapshot(or_anything=True)]


class BatchRequest(_Contract):
    snapshots: list[SnapshotItem] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} signal snapshots ({MAX_EXPLAINED_BATCH} with explain=true); "
        "each is validated on its own",
    )
    explain: bool = Field(
        False,
        strict=True,
        description="true adds the explanation and tips to every result (slower; at most "
        f"{MAX_EXPLAINED_BATCH} snapshots)",
    )

    @model_validator(mode="after")
    def _explained_batches_are_small(self) -> BatchRequest:
        if self.explain and len(self.snapshots) > MAX_EXPLAINED_BATCH:
            raise ValueError(
                f"snapshots: at most {MAX_EXPLAINED_BATCH} with explain=true, got "
                f"{len(self.snapshots)}; send explain=false or smaller batches"
            )
        return self


# --- responses -----------------------------------------------------------------------------------


class Factor(_Contract):
    """One signal behind the score, with the points it is worth (negative: it holds the score
    down)."""

    signal: str = Field(description="model feature name")
    meaning: str
    network: str = Field(description="network of the signal, or 'cross_network'")
    family: str = Field(description="signal family")
    value: float | None = Field(None, description="the feature's value (null: unknown)")
    points: float


class Tip(_Contract):
    """A what-if: the same snapshot, changed as described, scored again through the same path."""

    action: str = Field(description="stable identifier of the what-if, e.g. link_linkedin")
    text: str
    gain: float = Field(gt=0, description="estimated score points gained")


class ScoreResult(_Answer):
    """A score and, unless explain=false, what it is made of and what would raise it. Numbers
    are rounded to 2 decimals as they are written (`serving.rounding`: points per network and
    family still add up exactly to score - baseline)."""

    user_id: str | None = None
    score: float = Field(ge=1, le=100, description="influence score, 1-100 (2 decimals)")
    percentile: float = Field(ge=0, le=100, description="share of the reference population "
                              "below, in percent (2 decimals)")
    provisional: bool = Field(
        description="true when the snapshot is too thin (new account, little data) to be sure"
    )
    baseline: float | None = Field(
        None, description="the score of an average user of the reference population: the "
        "points below are measured from it")
    networks: dict[str, float] | None = Field(
        None, description="points per network against the baseline (negative: that network "
        "holds the score below the baseline); they add up to score - baseline"
    )
    families: dict[str, float] | None = Field(
        None, description="points per signal family against the baseline; they add up to "
        "score - baseline"
    )
    factors: list[Factor] | None = Field(None, description="the signals that move the score most")
    tips: list[Tip] | None = Field(
        None, max_length=3, description="up to three what-ifs with a positive estimated gain"
    )

    @model_serializer(mode="wrap")
    def _rounded(self, handler: Any):
        return rounded_score({k: v for k, v in handler(self).items() if v is not None})


class ScoreResponse(ScoreResult):
    model_version: str


class BatchItem(_Answer):
    """One item of a batch, in request order: a result, or a summary of the item's problems and
    the first of them (at most 5; the summary counts them all)."""

    index: int
    result: ScoreResult | None = None
    error: str | None = Field(None, description="what is wrong with the item, in one line")
    errors: list[FieldError] | None = None


class BatchResponse(_Contract):
    results: list[BatchItem]
    scored: int = Field(description="items with a result")
    rejected: int = Field(description="items with errors")
    model_version: str
