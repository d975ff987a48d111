"""Client errors in one shape: a list of (field path, problem), from pydantic's errors.

Pydantic's locations are made readable: `snapshot.networks.twitter.received.foo` rather than
`('snapshot', 'networks', 'twitter', 'window', 'received', 'foo', '[key]')` (the union tag
`window`/`windows` of `features.snapshot.NetworkWindows` is dropped, list positions are `[i]`),
and an unknown key (network, action, family, field) is answered with the names allowed there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from features.snapshot import NetworkSignals
from influence.vocabulary import FAMILIES, NETWORKS, actions_of
from serving.settings import MAX_LISTED_ERRORS

_UNION_TAGS = frozenset({"window", "windows"})
_KEY_MARK = "[key]"
# Cross-field validators (SignalSnapshot's, BatchRequest's) name the path inside their message
# ("networks.twitter.sent: ...", "snapshots: ...").
_PATH_IN_MESSAGE = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): (.*)$", re.DOTALL)


class FieldError(BaseModel):
    path: str = Field(description="dotted path of the offending field ('' = the whole body)")
    problem: str


class ErrorBody(BaseModel):
    """Every error answer of the service (any status of 400 or more, every endpoint): a summary
    and, for invalid input, one entry per problem (at most 20; the summary counts the rest)."""

    error: str = Field(description="what went wrong, in one line")
    errors: list[FieldError] = Field(
        default_factory=list, description="the problems with the request, by field path"
    )


def dotted(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _readable_loc(loc: Sequence[Any]) -> tuple[list[Any], bool]:
    """(path parts without union tags, whether the last part is a dict key that was refused)."""
    parts: list[Any] = []
    for i, part in enumerate(loc):
        after_network = i >= 2 and loc[i - 2] == "networks"
        if after_network and part in _UNION_TAGS:
            continue
        parts.append(part)
    is_key = bool(parts) and parts[-1] == _KEY_MARK
    return (parts[:-1] if is_key else parts), is_key


def _network_in(parts: Sequence[Any]) -> str | None:
    for i, part in enumerate(parts[:-1]):
        if part == "networks" and parts[i + 1] in NETWORKS:
            return str(parts[i + 1])
    return None


def _unknown_key_problem(parts: Sequence[Any]) -> str | None:
    """What to say about a refused dict key, with the names allowed there."""
    if len(parts) < 2:
        return None
    key, container = parts[-1], parts[-2]
    if container == "networks":
        return f"unknown network {key!r}; allowed: {', '.join(NETWORKS)}"
    network = _network_in(parts)
    if container in ("received", "sent") and network is not None:
        return f"unknown action {key!r} on {network}; allowed: {', '.join(actions_of(network))}"
    if container == "unique_engagers_by_family":
        return f"unknown family {key!r}; allowed: {', '.join(map(str, FAMILIES))}"
    return None


def _unknown_field_problem(parts: Sequence[Any]) -> str:
    name = parts[-1] if parts else "?"
    if _network_in(parts) is not None and len(parts) >= 4:
        allowed = ", ".join(NetworkSignals.model_fields)
        return f"unknown field {name!r}; allowed: {allowed}"
    return f"unknown field {name!r}"


def field_error(error: Mapping[str, Any], prefix: Sequence[Any] = ()) -> FieldError:
    """One pydantic error (as from `ValidationError.errors()`) as a FieldError."""
    parts, is_key = _readable_loc([*prefix, *error.get("loc", ())])
    message = str(error.get("msg", "invalid"))
    in_message = _PATH_IN_MESSAGE.match(message)
    if in_message:
        named = in_message.group(1).split(".")
        head = parts[: parts.index(named[0])] if named[0] in parts else parts
        return FieldError(path=dotted([*head, *named]), problem=in_message.group(2))
    problem = None
    if is_key:
        problem = _unknown_key_problem(parts)
    elif error.get("type") == "extra_forbidden":
        problem = _unknown_field_problem(parts)
    elif error.get("type") == "missing":
        problem = "required field is missing"
    return FieldError(path=dotted(parts), problem=problem or message.removeprefix("Value error, "))


def field_errors(errors: Iterable[Mapping[str, Any]], prefix: Sequence[Any] = ()) -> list[FieldError]:
    return [field_error(e, prefix) for e in errors]


def problems_summary(what: str, total: int, listed: int) -> str:
    """"invalid request: 3 problems", with how many are not listed when some are not."""
    summary = f"{what}: {total} problem{'s' if total != 1 else ''}"
    return summary if listed >= total else f"{summary} ({listed} listed, {total - listed} not shown)"


def invalid_body(errors: list[FieldError], total: int | None = None) -> ErrorBody:
    """The 400 answer of an invalid request: at most `MAX_LISTED_ERRORS` of its `total` problems
    (default: all of `errors`), the summary counting them all."""
    total = len(errors) if total is None else total
    listed = errors[:MAX_LISTED_ERRORS]
    return ErrorBody(error=problems_summary("invalid request", total, len(listed)), errors=listed)
