"""The shape of JSON text from outside, judged before (or beside) decoding it: nesting and repeated keys.

A body nested a hundred thousand levels deep exhausts a recursive parser, and an object
that names a key twice is read differently by different readers; both are refused at the door.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_FLAT = 32  # below this many brackets there is nothing to scan


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in JSON text (0 for a scalar), without parsing it."""
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets <= _FLAT:  # the usual flat event: nothing to scan
        return brackets
    depth = deepest = 0
    for byte in _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def repeated_key(raw: bytes) -> str | None:
    """The first key that some object of the JSON text names twice, or None."""
    def pairs(items: list[tuple[str, Any]]) -> dict:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise _Repeated(next(k for k in keys if keys.count(k) > 1))
        return {}

    try:
        # Numbers stay text: only the structure matters here, and Python would refuse >4300-digit integers.
        json.loads(raw, object_pairs_hook=pairs, parse_int=str, parse_float=str, parse_constant=str)
    except _Repeated as found:
        return found.key
    return None
