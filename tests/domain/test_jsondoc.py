"""The one JSON loader for what the registry did not write: bounded depth, linear time."""

from __future__ import annotations

import time

import pytest

from cargohold.domain import jsondoc
from cargohold.domain.jsondoc import MAX_DEPTH, JsonTooDeep


def nested(depth: int, *, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def objects(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 100_000, 1_000_000])
def test_too_deep_is_a_value_error(depth: int) -> None:
    for text in (nested(depth), objects(depth)):
        with pytest.raises(JsonTooDeep) as caught:
            jsondoc.loads(text)
        assert isinstance(caught.value, ValueError)
        with pytest.raises(JsonTooDeep):
            jsondoc.loads(text.encode())


def test_up_to_the_limit_loads() -> None:
    assert jsondoc.loads(nested(MAX_DEPTH)) is not None
    assert jsondoc.loads(objects(MAX_DEPTH))["a"]["a"]["a"] is not None
    assert jsondoc.loads(b'{"x": [1, {"y": "[[[[["}]}') == {"x": [1, {"y": "[[[[["}]}
    with pytest.raises(JsonTooDeep):
        jsondoc.loads(nested(4), max_depth=3)
    assert jsondoc.loads(nested(3), max_depth=3) == [[[]]]


def test_many_shallow_brackets_stay_linear() -> None:
    wide = "[" + ",".join(["[[1]]"] * 500_000) + "]"
    started = time.perf_counter()
    assert len(jsondoc.loads(wide)) == 500_000
    deep_tail = "[" + ",".join(["[[1]]"] * 500_000) + "," + nested(MAX_DEPTH) + "]"
    with pytest.raises(JsonTooDeep):
        jsondoc.loads(deep_tail)
    assert time.perf_counter() - started < 30  # seconds: linear, on a loaded machine too


def test_malformed_json_is_still_a_value_error() -> None:
    for text in ("{", "[1,]", nested(10)[:-1]):
        with pytest.raises(ValueError):
            jsondoc.loads(text)
