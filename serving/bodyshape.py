"""The shape of a JSON body, measured on its bytes before anything parses it.

Validating a body costs time in proportion to what is wrong with it as much as to its size: one
1.3 MB body holding 100,000 unknown keys cost 5 s of pydantic errors and 15 MB of answer, with
the worker's event loop blocked all along. A parser cannot be stopped half-way, so the limits
that bound that cost (`ShapeLimits`: nesting depth, keys per object, items per array, keys
inside any object below the top level, i.e. per snapshot) are checked here first, with numpy
over the raw bytes: ~6 ms a megabyte, and numpy lets other threads run meanwhile.

How: a `"` preceded by an odd run of backslashes is escaped; the others open and close strings
(the parity of their running count says whether a byte is inside one). The structural bytes
`{ } [ ] : ,` outside strings give the nesting depth (a running sum of opens and closes), and
each `:` or `,` belongs to the latest container opened at its depth. Bytes that are not valid
JSON are not judged (`None`): the parser will refuse them, in time linear in what it reads,
and what it reads before the first error is valid JSON that these counts describe exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_OPEN, _CLOSE, _COLON, _COMMA, _QUOTE = 1, 2, 3, 4, 5
_KIND = np.zeros(256, dtype=np.uint8)
_KIND[[ord("{"), ord("[")]] = _OPEN
_KIND[[ord("}"), ord("]")]] = _CLOSE
_KIND[ord(":")] = _COLON
_KIND[ord(",")] = _COMMA
_KIND[ord('"')] = _QUOTE
_BACKSLASH, _BRACE = ord("\\"), ord("{")


@dataclass(frozen=True)
class ShapeLimits:
    max_depth: int
    max_keys: int
    """Keys of one object."""
    max_items: int
    """Items of one array."""
    max_nested_keys: int
    """Keys inside any object below the top level (its own and its descendants')."""


def _escaped(bytes_: np.ndarray) -> np.ndarray:
    """Positions of the bytes escaped by a backslash (sparse: only where backslashes are)."""
    slashes = np.flatnonzero(bytes_ == _BACKSLASH)
    if slashes.size == 0:
        return slashes
    starts = np.r_[0, np.flatnonzero(np.diff(slashes) != 1) + 1]
    lengths = np.diff(np.r_[starts, slashes.size])
    ends = slashes[starts] + lengths
    return ends[lengths % 2 == 1]


def _structure(body: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(positions, kinds, depth after each) of the structural bytes outside strings, or None
    when the quotes or brackets do not balance. Works on the quotes and structural bytes only
    (a fraction of the body), not on every byte."""
    bytes_ = np.frombuffer(body, dtype=np.uint8)
    kinds = _KIND[bytes_]
    positions = np.flatnonzero(kinds)
    kinds = kinds[positions]
    quotes = kinds == _QUOTE
    escaped = _escaped(bytes_)
    if escaped.size:
        quotes &= ~np.isin(positions, escaped)
    inside = np.cumsum(quotes, dtype=np.uint8) & 1  # parity survives the uint8 wrap-around
    if inside.size and inside[-1]:
        return None
    structural = ~quotes & (inside == 0) & (kinds != _QUOTE)
    positions, kinds = positions[structural], kinds[structural]
    step = np.where(kinds == _OPEN, 1, np.where(kinds == _CLOSE, -1, 0)).astype(np.int32)
    depth = np.cumsum(step, dtype=np.int32)
    if depth.size and (depth.min() < 0 or depth[-1] != 0):
        return None
    return positions, kinds, depth


def shape_problem(body: bytes, limits: ShapeLimits) -> str | None:
    """What breaks the limits in `body` (the first thing found, with its byte offset), or None
    when nothing does (or the body is not JSON this can judge)."""
    found = _structure(body) if body else None
    if found is None or not found[2].size:
        return None
    positions, kinds, depth = found
    deepest = int(depth.max())
    if deepest > limits.max_depth:
        at = int(positions[np.argmax(depth)])
        return (f"the body nests {deepest} levels deep at byte {at}; at most "
                f"{limits.max_depth} are allowed")
    # the container of each token: the latest open at its level (an open's own level, the level
    # of the container a ':', ',' or close is in), found for all tokens in one sorted pass
    level = (depth + (kinds == _CLOSE)).astype(np.int8)
    order = np.argsort(level, kind="stable")  # a radix sort: by level, in byte order within
    latest = np.where(kinds[order] == _OPEN, np.arange(order.size), 0)
    owner = np.empty_like(order)
    owner[order] = order[np.maximum.accumulate(latest)]
    is_object = np.frombuffer(body, dtype=np.uint8)[positions] == _BRACE
    n = kinds.size
    keys = np.bincount(owner[kinds == _COLON], minlength=n)
    wide = np.flatnonzero(keys > limits.max_keys)
    if wide.size:
        i = wide[0]
        return (f"an object at byte {positions[i]} has {keys[i]} keys; at most "
                f"{limits.max_keys} are allowed")
    items = np.bincount(owner[kinds == _COMMA], minlength=n) + 1
    long = np.flatnonzero((kinds == _OPEN) & ~is_object & (items > limits.max_items))
    if long.size:
        i = long[0]
        return (f"an array at byte {positions[i]} has {items[i]} items; at most "
                f"{limits.max_items} are allowed")
    closes = np.flatnonzero(kinds == _CLOSE)
    opens = owner[closes]
    colons_before = np.cumsum(kinds == _COLON)
    nested = colons_before[closes] - colons_before[opens]
    heavy = np.flatnonzero((level[opens] >= 2) & is_object[opens]
                           & (nested > limits.max_nested_keys))
    if heavy.size:
        i = opens[heavy[0]]
        return (f"an object at byte {positions[i]} holds {nested[heavy[0]]} keys in all; at "
                f"most {limits.max_nested_keys} are allowed in one (a snapshot)")
    return None
