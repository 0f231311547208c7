"""The one way the registry reads JSON it did not write: `loads`, bounded in nesting depth.

Python's decoder recurses once per nesting level, so `[[[[…]]]]` nested deeply enough raises
`RecursionError`, and code that walks a decoded value recursively could do the same further on.
`loads` answers a document nesting deeper than `MAX_DEPTH` levels with `JsonTooDeep`, a
`ValueError` like every other reason a text is not acceptable JSON, so callers that already
refuse malformed JSON refuse these too, in their protocol's words. The cost stays linear: the
decoder gives up at its own recursion limit, and a decoded value is measured (without
recursion) only when the text holds more brackets than the limit.
"""

from __future__ import annotations

import json
from typing import Any

#: Deeper than any manifest, policy document, request body or package.json written by hand.
MAX_DEPTH = 128


class JsonTooDeep(ValueError):
    """A JSON text whose arrays and objects nest deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nests deeper than {limit} levels")
        self.limit = limit


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads(data)`, or `JsonTooDeep` for a value nesting deeper than `max_depth`."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    if _brackets(data) > max_depth and _deeper_than(value, max_depth):
        raise JsonTooDeep(max_depth)
    return value


def _brackets(data: str | bytes | bytearray) -> int:
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` holds lists or dicts nested more than `limit` deep (`[]` is 1), level
    by level: each container is looked at once, without recursion."""
    level = [value] if type(value) in _CONTAINERS else []
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if type(item) is dict else item)
            if type(child) in _CONTAINERS
        ]
        if not level:
            return False
    return bool(level)


_CONTAINERS = (dict, list)
