"""The signal snapshot as the OpenAPI document describes it: per network, only that network's
actions.

`features.snapshot.SignalSnapshot` validates requests. Its action rule ("received/sent keys are
the actions of *that* network") lives in a validator, and its dict keys are constrained by
`propertyNames`, which OpenAPI 3.0 (what BentoML serves) does not have; a client or a fuzzer
reading the document would believe any key goes. These documentation models say the same thing
in plain OpenAPI 3.0: one object per network with that network's actions as optional properties,
`additionalProperties: false` everywhere. They are built from `NetworkSignals` and the vocabulary,
so they cannot drift from the contract, and they are never used to validate.

What the document still cannot say: `active_days` at most `window_days`, and distinct
`window_days` in a list of windows (answered with a 400 naming the field).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from features.snapshot import NetworkSignals, SignalSnapshot
from influence.vocabulary import FAMILIES, NETWORKS, actions_of
from serving.openapi import nullable_fields

_MAX_WINDOWS = 16
_NESTED = {"received", "sent", "unique_engagers_by_family"}
_FORBID = ConfigDict(extra="forbid", json_schema_extra=nullable_fields)


def _count_type() -> Any:
    """The type of one counter inside `received`/`sent` (the contract's `Count`)."""
    return NetworkSignals.model_fields["received"].annotation.__args__[1]


def _title(network: str) -> str:
    return "".join(part.capitalize() for part in network.split("_"))


def _counts(name: str, keys: tuple[str, ...], description: str) -> type[BaseModel]:
    fields = {key: (_count_type(), Field(None)) for key in keys}
    return create_model(name, __config__=_FORBID, __doc__=description, **fields)


def _network_model(network: str) -> type[BaseModel]:
    title = _title(network)
    actions = actions_of(network)
    received = _counts(f"{title}Actions", actions, f"counts by action name of {network}")
    families = _counts("FamilyCounts", tuple(str(f) for f in FAMILIES), "counts by action family")
    fields: dict[str, Any] = {
        name: (info.annotation, info)
        for name, info in NetworkSignals.model_fields.items()
        if name not in _NESTED
    }
    fields["received"] = (received, Field(None, description="reactions received in the window"))
    fields["sent"] = (received, Field(None, description="reactions sent to others in the window"))
    fields["unique_engagers_by_family"] = (
        families, Field(None, description="distinct engagers in the window, by action family")
    )
    return create_model(
        f"{title}Signals", __config__=_FORBID, __doc__=NetworkSignals.__doc__, **fields
    )


def _at_least_one_network(schema: dict[str, Any], cls: Any = None) -> None:
    nullable_fields(schema)
    schema["minProperties"] = 1


@lru_cache(maxsize=1)
def snapshot_doc_model() -> type[BaseModel]:
    """SignalSnapshot, spelled out network by network for the document."""
    networks: dict[str, Any] = {}
    for network in NETWORKS:
        signals = _network_model(network)
        many = Annotated[list[signals], Field(min_length=1, max_length=_MAX_WINDOWS)]  # type: ignore[valid-type]
        one_or_many = signals | many
        networks[network] = (
            one_or_many,
            Field(None, description=f"one window of {network} counters, or a list of windows "
                  "of distinct lengths (at most 16)"),
        )
    networks_model = create_model(
        "LinkedNetworks",
        __config__=ConfigDict(extra="forbid", json_schema_extra=_at_least_one_network),
        __doc__="At least one linked network.",
        **networks,
    )
    top = {
        name: (info.annotation, info)
        for name, info in SignalSnapshot.model_fields.items()
        if name != "networks"
    }
    return create_model(
        "SignalSnapshot",
        __config__=_FORBID,
        __doc__=SignalSnapshot.__doc__,
        networks=(networks_model, Field(...)),
        **top,
    )


@dataclass(frozen=True)
class DocumentedAsSnapshot:
    """Annotated metadata: validate as the annotated type, document as `snapshot_doc_model()`.
    `or_anything`: a batch item, which may be any JSON value (an invalid one gets its own errors
    in a 200 answer), documented as "a snapshot, or anything else" so that the document does not
    promise a 400 the service never gives."""

    or_anything: bool = False

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> Any:
        snapshot = handler(snapshot_doc_model().__pydantic_core_schema__)
        if not self.or_anything or {} in snapshot.get("anyOf", ()):  # pydantic may ask twice
            return snapshot
        return {"anyOf": [snapshot, {}], "description": "a SignalSnapshot; any other value is "
                "answered with its own errors in the item, not with a 400"}
