"""Event patterns in EventBridge's form: which events a webhook target receives.

A pattern is a JSON object shaped like the events it selects. A key whose value is an object
descends into the event's object of that name; a key whose value is an array is a leaf, and
lists what the event's value there may be. Every key of a pattern must match (and); any entry of
a leaf's array may (or). An event value that is an array matches when any of its elements does.

A leaf's entries are exact values (a string, a number, `true`, `false`, `null`; strings are
case-sensitive, numbers compare by value) or one filter each:

- `{"prefix": "v1."}`, `{"suffix": "-rc"}`, each also as `{"prefix": {"equals-ignore-case": …}}`;
- `{"equals-ignore-case": "Push"}`; `{"wildcard": "prod-*"}` (`*`: any run of characters, `\\*` a
  literal star);
- `{"anything-but": …}`: a value, a list of values, or `{"prefix"|"suffix": …}` or
  `{"equals-ignore-case": …}`; it matches a value that is present and is none of them;
- `{"exists": true}` / `{"exists": false}`: the field is there (as a value, not an object), or
  not;
- `{"numeric": [">", 0, "<=", 5]}`: one comparison or a lower and an upper bound, on numbers;
- `{"cidr": "10.0.0.0/24"}`: an IP address string within the network.

`"$or": [pattern, pattern, …]` at any level matches when one of the patterns does. String
filters never match numbers, and numeric filters never match strings. A pattern is validated
when it is parsed; a bad one raises `PatternError` saying where and why.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Condition = Callable[[Any], bool]

_NUMERIC_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_LOWER = (">", ">=")
_UPPER = ("<", "<=")


class PatternError(ValueError):
    """An event pattern that is not valid, with where in it and why."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, and `1` is `1.0`."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _string_filter(test: Callable[[str], bool]) -> Condition:
    return lambda value: isinstance(value, str) and test(value)


def _affix(where: str, name: str, argument: Any) -> Callable[[str], bool]:
    """The test of `{"prefix": …}` or `{"suffix": …}` on a string."""
    fold = False
    if isinstance(argument, dict):
        if set(argument) != {"equals-ignore-case"}:
            raise PatternError(f"{where}: {name} takes a string or {{'equals-ignore-case': …}}")
        argument, fold = argument["equals-ignore-case"], True
    if not isinstance(argument, str):
        raise PatternError(f"{where}: {name} needs a string, not {argument!r}")
    if fold:
        folded = argument.casefold()
        if name == "prefix":
            return lambda value: value.casefold().startswith(folded)
        return lambda value: value.casefold().endswith(folded)
    if name == "prefix":
        return lambda value: value.startswith(argument)
    return lambda value: value.endswith(argument)


def _wildcard(where: str, argument: Any) -> Callable[[str], bool]:
    if not isinstance(argument, str):
        raise PatternError(f"{where}: wildcard needs a string, not {argument!r}")
    if "**" in argument:
        raise PatternError(f"{where}: wildcard {argument!r} has consecutive stars")
    parts = re.split(r"(\\\*|\*)", argument)
    regex = "".join(
        ".*" if part == "*" else re.escape("*") if part == "\\*" else re.escape(part)
        for part in parts
    )
    compiled = re.compile(regex, re.DOTALL)
    return lambda value: compiled.fullmatch(value) is not None


def _ignore_case(where: str, argument: Any) -> Callable[[str], bool]:
    if not isinstance(argument, str):
        raise PatternError(f"{where}: equals-ignore-case needs a string, not {argument!r}")
    folded = argument.casefold()
    return lambda value: value.casefold() == folded


def _numeric(where: str, argument: Any) -> Condition:
    if (
        not isinstance(argument, list)
        or len(argument) not in (2, 4)
        or not all(isinstance(op, str) for op in argument[::2])
        or not all(_is_number(n) and math.isfinite(n) for n in argument[1::2])
    ):
        raise PatternError(
            f"{where}: numeric takes [operator, number] or [operator, number, operator, number]"
        )
    tests: list[tuple[Callable[[float, float], bool], float]] = []
    for op, bound in zip(argument[::2], argument[1::2], strict=True):
        if op not in _NUMERIC_OPERATORS:
            raise PatternError(f"{where}: unknown numeric operator {op!r}")
        tests.append((_NUMERIC_OPERATORS[op], float(bound)))
    if len(argument) == 4:
        (low_op, low), (high_op, high) = argument[0:2], argument[2:4]
        if low_op not in _LOWER or high_op not in _UPPER or not low < high:
            raise PatternError(
                f"{where}: a numeric range is a lower bound (> or >=) then a greater upper "
                "bound (< or <=)"
            )
    return lambda value: _is_number(value) and all(test(value, b) for test, b in tests)


def _cidr(where: str, argument: Any) -> Condition:
    try:
        network = ipaddress.ip_network(argument, strict=False)
    except (TypeError, ValueError):
        raise PatternError(f"{where}: cidr needs a network such as 10.0.0.0/24") from None

    def test(value: str) -> bool:
        try:
            return ipaddress.ip_address(value) in network
        except ValueError:
            return False

    return _string_filter(test)


def _anything_but(where: str, argument: Any) -> Condition:
    if isinstance(argument, dict):
        if len(argument) != 1:
            raise PatternError(f"{where}: anything-but takes one filter")
        ((name, inner),) = argument.items()
        if name in ("prefix", "suffix"):
            affix = _affix(where, name, inner)
            return _string_filter(lambda value: not affix(value))
        if name == "equals-ignore-case":
            inners = inner if isinstance(inner, list) else [inner]
            if not inners:
                raise PatternError(f"{where}: anything-but equals-ignore-case needs a value")
            tests = [_ignore_case(where, each) for each in inners]
            return _string_filter(lambda value: not any(test(value) for test in tests))
        raise PatternError(f"{where}: anything-but cannot take {name!r}")
    excluded = argument if isinstance(argument, list) else [argument]
    if not excluded or not all(isinstance(x, str) or _is_number(x) for x in excluded):
        raise PatternError(f"{where}: anything-but takes strings or numbers, not {argument!r}")
    return lambda value: not any(_same(value, x) for x in excluded)


def _filter(where: str, entry: Mapping[str, Any]) -> Condition:
    if len(entry) != 1:
        raise PatternError(f"{where}: each filter is an object of one key, not {dict(entry)!r}")
    ((name, argument),) = entry.items()
    if name in ("prefix", "suffix"):
        return _string_filter(_affix(where, name, argument))
    if name == "equals-ignore-case":
        return _string_filter(_ignore_case(where, argument))
    if name == "wildcard":
        return _string_filter(_wildcard(where, argument))
    if name == "anything-but":
        return _anything_but(where, argument)
    if name == "numeric":
        return _numeric(where, argument)
    if name == "cidr":
        return _cidr(where, argument)
    raise PatternError(f"{where}: unknown filter {name!r}")


class _Leaf:
    """The array of one leaf: exact values and filters, any of which may match."""

    def __init__(self, where: str, entries: Any) -> None:
        if not isinstance(entries, list) or not entries:
            raise PatternError(f"{where}: a leaf must be a non-empty array of values or filters")
        self.conditions: list[Condition] = []
        #: Matches on whether there is a value at all: `exists` filters.
        self.presence: list[bool] = []
        for entry in entries:
            if isinstance(entry, dict):
                if set(entry) == {"exists"}:
                    if not isinstance(entry["exists"], bool):
                        raise PatternError(f"{where}: exists takes true or false")
                    self.presence.append(entry["exists"])
                else:
                    self.conditions.append(_filter(where, entry))
            elif isinstance(entry, list):
                raise PatternError(f"{where}: a leaf's entries cannot be arrays")
            elif isinstance(entry, float) and not math.isfinite(entry):
                raise PatternError(f"{where}: {entry!r} is not a JSON number")
            else:
                self.conditions.append(_exactly(entry))

    def matches(self, values: Sequence[Any]) -> bool:
        if any(present == bool(values) for present in self.presence):
            return True
        return any(condition(value) for value in values for condition in self.conditions)


def _exactly(literal: Any) -> Condition:
    return lambda value: _same(value, literal)


def _leaf_values(value: Any, present: bool) -> list[Any]:
    """The values a leaf is matched against: none for an absent field or an object, the
    elements of an array (flattened), or the value itself."""
    if not present or isinstance(value, dict):
        return []
    if isinstance(value, list):
        return [v for element in value for v in _leaf_values(element, True)]
    return [value]


class _Node:
    """A pattern object: every key must match."""

    def __init__(self, where: str, pattern: Any) -> None:
        if not isinstance(pattern, dict) or not pattern:
            raise PatternError(f"{where}: a pattern must be a non-empty JSON object")
        self.leaves: dict[str, _Leaf] = {}
        self.children: dict[str, _Node] = {}
        self.alternatives: list[_Node] = []
        for key, value in pattern.items():
            if not isinstance(key, str):
                raise PatternError(f"{where}: keys must be strings")
            path = f"{where}.{key}" if where else key
            if key == "$or":
                if not isinstance(value, list) or len(value) < 2:
                    raise PatternError(f"{path}: $or takes an array of at least two patterns")
                self.alternatives = [_Node(f"{path}[{i}]", alt) for i, alt in enumerate(value)]
            elif isinstance(value, dict):
                self.children[key] = _Node(path, value)
            else:
                self.leaves[key] = _Leaf(path, value)

    def matches(self, event: Any) -> bool:
        objects = _objects(event)
        if len(objects) > 1:
            return any(self.matches(one) for one in objects)
        fields = objects[0]
        for key, leaf in self.leaves.items():
            if not leaf.matches(_leaf_values(fields.get(key), key in fields)):
                return False
        for key, child in self.children.items():
            if not child.matches(fields.get(key)):
                return False
        return not self.alternatives or any(alt.matches(fields) for alt in self.alternatives)


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects a pattern object is matched against: the value, each object of an array,
    or (for anything else, absent included) one empty object, where only `exists: false`
    matches."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        found = [one for element in value for one in _objects(element) if one]
        return found or [{}]
    return [{}]


class EventPattern:
    """A validated event pattern; `matches(event)` on an event document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._root = _Node("", dict(document))
        #: The pattern as given, for showing it back.
        self.document: dict[str, Any] = dict(document)

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> EventPattern:
        """From its JSON text or its parsed object."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise PatternError(f"the pattern is not JSON: {exc}") from None
        if not isinstance(value, Mapping):
            raise PatternError("a pattern must be a JSON object")
        return cls(value)

    def matches(self, event: Mapping[str, Any]) -> bool:
        return self._root.matches(event)

    def __repr__(self) -> str:
        return f"EventPattern({json.dumps(self.document, sort_keys=True)})"
