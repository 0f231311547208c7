"""Event patterns of EventBridge's form, matched against ECR's event documents."""

from __future__ import annotations

from typing import Any

import pytest

from cargohold.domain.eventpattern import EventPattern, PatternError

PUSH: dict[str, Any] = {
    "version": "0",
    "id": "13cde686-328b-6117-af20-0e5566167482",
    "detail-type": "ECR Image Action",
    "source": "aws.ecr",
    "account": "123456789012",
    "time": "2026-12-06T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ecr:us-east-1:123456789012:repository/team/app"],
    "detail": {
        "result": "SUCCESS",
        "repository-name": "team/app",
        "image-digest": "sha256:" + "a" * 64,
        "action-type": "PUSH",
        "image-tag": "v1.2.0",
    },
}

SCAN: dict[str, Any] = {
    **PUSH,
    "detail-type": "ECR Image Scan",
    "detail": {
        "scan-status": "COMPLETE",
        "repository-name": "team/app",
        "image-digest": "sha256:" + "a" * 64,
        "image-tags": ["v1.2.0", "latest"],
        "finding-severity-counts": {"CRITICAL": 2, "HIGH": 5},
    },
}


def matches(pattern: dict[str, Any], event: dict[str, Any] = PUSH) -> bool:
    return EventPattern.parse(pattern).matches(event)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.ecr"]}, True),
        ({"source": ["aws.s3"]}, False),
        ({"source": ["aws.s3", "aws.ecr"]}, True),
        ({"detail-type": ["ECR Image Action"], "source": ["aws.ecr"]}, True),
        ({"detail-type": ["ECR Image Scan"], "source": ["aws.ecr"]}, False),
        ({"account": ["123456789012"], "region": ["us-east-1"]}, True),
        ({"detail": {"action-type": ["PUSH"]}}, True),
        ({"detail": {"action-type": ["push"]}}, False),  # case-sensitive
        ({"detail": {"action-type": ["DELETE"]}}, False),
        ({"detail": {"action-type": ["PUSH"], "result": ["FAILURE"]}}, False),
        ({"detail": {"repository-name": ["team/app"], "image-tag": ["v1.2.0"]}}, True),
        ({"detail": {"missing": ["x"]}}, False),
        ({"detail": {"result": {"nested": ["x"]}}}, False),
        ({"resources": ["arn:aws:ecr:us-east-1:123456789012:repository/team/app"]}, True),
        ({"resources": ["arn:aws:ecr:us-east-1:123456789012:repository/other"]}, False),
        ({"nothing": {"deeper": ["x"]}}, False),
    ],
)
def test_exact_values(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern) is expected


def test_an_array_in_the_event_matches_when_any_element_does() -> None:
    assert matches({"detail": {"image-tags": ["latest"]}}, SCAN)
    assert matches({"detail": {"image-tags": ["nope", "v1.2.0"]}}, SCAN)
    assert not matches({"detail": {"image-tags": ["v2"]}}, SCAN)
    assert matches({"detail": {"image-tags": [{"prefix": "v1."}]}}, SCAN)


def test_arrays_of_objects_match_when_one_object_does() -> None:
    event = {"detail": {"layers": [{"size": 1, "kind": "a"}, {"size": 9, "kind": "b"}]}}
    assert matches({"detail": {"layers": {"kind": ["b"]}}}, event)
    assert matches({"detail": {"layers": {"kind": ["b"], "size": [9]}}}, event)
    assert not matches({"detail": {"layers": {"kind": ["c"]}}}, event)


def test_numbers_booleans_and_null_match_by_json_type() -> None:
    event = {"detail": {"n": 5, "flag": True, "none": None, "text": "5"}}
    assert matches({"detail": {"n": [5]}}, event)
    assert matches({"detail": {"n": [5.0]}}, event)
    assert not matches({"detail": {"n": ["5"]}}, event)
    assert not matches({"detail": {"text": [5]}}, event)
    assert matches({"detail": {"flag": [True]}}, event)
    assert not matches({"detail": {"flag": [1]}}, event)
    assert not matches({"detail": {"n": [True]}}, {"detail": {"n": 1}})
    assert matches({"detail": {"none": [None]}}, event)
    assert not matches({"detail": {"missing": [None]}}, event)


def test_severity_counts_nested_two_levels() -> None:
    pattern = {"detail": {"finding-severity-counts": {"CRITICAL": [{"numeric": [">", 0]}]}}}
    assert matches(pattern, SCAN)
    assert not matches(pattern, {**SCAN, "detail": {"finding-severity-counts": {"HIGH": 1}}})


@pytest.mark.parametrize(
    ("leaf", "value", "expected"),
    [
        ({"prefix": "v1."}, "v1.2.0", True),
        ({"prefix": "v2."}, "v1.2.0", False),
        ({"prefix": ""}, "anything", True),
        ({"prefix": {"equals-ignore-case": "V1."}}, "v1.2.0", True),
        ({"prefix": "1"}, 12, False),  # string filters never match numbers
        ({"suffix": ".0"}, "v1.2.0", True),
        ({"suffix": "-rc"}, "v1.2.0", False),
        ({"suffix": {"equals-ignore-case": "-RC"}}, "v1-rc", True),
        ({"equals-ignore-case": "PUSH"}, "push", True),
        ({"equals-ignore-case": "PUSH"}, "pull", False),
        ({"wildcard": "v*.0"}, "v1.2.0", True),
        ({"wildcard": "v*.1"}, "v1.2.0", False),
        ({"wildcard": "a\\*b"}, "a*b", True),
        ({"wildcard": "a\\*b"}, "axb", False),
        ({"anything-but": "latest"}, "v1", True),
        ({"anything-but": "latest"}, "latest", False),
        ({"anything-but": ["a", "b"]}, "b", False),
        ({"anything-but": ["a", "b"]}, "c", True),
        ({"anything-but": 5}, 5, False),
        ({"anything-but": 5}, 6, True),
        ({"anything-but": {"prefix": "dev-"}}, "dev-1", False),
        ({"anything-but": {"prefix": "dev-"}}, "prod-1", True),
        ({"anything-but": {"suffix": "-rc"}}, "v1-rc", False),
        ({"anything-but": {"equals-ignore-case": ["X", "Y"]}}, "x", False),
        ({"anything-but": {"equals-ignore-case": "X"}}, "z", True),
        ({"numeric": [">", 0]}, 3, True),
        ({"numeric": [">", 0]}, 0, False),
        ({"numeric": [">=", 0, "<", 10]}, 0, True),
        ({"numeric": [">=", 0, "<", 10]}, 10, False),
        ({"numeric": [">", 0, "<=", 10]}, 10, True),
        ({"numeric": ["=", 3.5]}, 3.5, True),
        ({"numeric": ["<", 3]}, "2", False),  # numeric filters never match strings
        ({"numeric": ["<", 3]}, True, False),
        ({"cidr": "10.0.0.0/24"}, "10.0.0.7", True),
        ({"cidr": "10.0.0.0/24"}, "10.0.1.7", False),
        ({"cidr": "10.0.0.0/24"}, "not an address", False),
        ({"cidr": "2001:db8::/32"}, "2001:db8::1", True),
    ],
)
def test_filters(leaf: dict[str, Any], value: Any, expected: bool) -> None:
    assert matches({"detail": {"field": [leaf]}}, {"detail": {"field": value}}) is expected


def test_exists() -> None:
    assert matches({"detail": {"image-tag": [{"exists": True}]}})
    assert not matches({"detail": {"image-tag": [{"exists": False}]}})
    assert matches({"detail": {"other": [{"exists": False}]}})
    assert not matches({"detail": {"other": [{"exists": True}]}})
    # A whole missing object: its fields do not exist either.
    assert matches({"nothing": {"here": [{"exists": False}]}})
    # exists is about values, not objects.
    assert not matches({"detail": [{"exists": True}]})
    assert matches({"detail": {"tags": [{"exists": False}]}}, {"detail": {"tags": []}})
    assert matches({"detail": {"n": [{"exists": True}]}}, {"detail": {"n": None}})


def test_anything_but_needs_the_field() -> None:
    assert not matches({"detail": {"other": [{"anything-but": "x"}]}})


def test_a_leaf_is_an_or_of_values_and_filters() -> None:
    pattern = {"detail": {"image-tag": ["latest", {"prefix": "v1."}, {"exists": False}]}}
    assert matches(pattern)
    assert matches(pattern, {"detail": {}})
    assert matches(pattern, {"detail": {"image-tag": "latest"}})
    assert not matches(pattern, {"detail": {"image-tag": "v2"}})


def test_or_of_patterns() -> None:
    pattern = {
        "source": ["aws.ecr"],
        "$or": [
            {"detail-type": ["ECR Image Scan"]},
            {"detail": {"action-type": ["DELETE"]}},
        ],
    }
    assert matches(pattern, SCAN)
    assert not matches(pattern, PUSH)
    assert matches(pattern, {**PUSH, "detail": {**PUSH["detail"], "action-type": "DELETE"}})


def test_parses_json_text() -> None:
    pattern = EventPattern.parse('{"detail": {"action-type": ["PUSH"]}}')
    assert pattern.matches(PUSH)
    assert pattern.document == {"detail": {"action-type": ["PUSH"]}}
    assert "action-type" in repr(pattern)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ({}, "non-empty JSON object"),
        ({"source": "aws.ecr"}, "source: a leaf must be a non-empty array"),
        ({"source": []}, "source: a leaf must be a non-empty array"),
        ({"detail": {}}, "detail: a pattern must be a non-empty"),
        ({"detail": {"x": [[1]]}}, "detail.x: a leaf's entries cannot be arrays"),
        ({"detail": {"x": [{"prefix": 1}]}}, "detail.x: prefix needs a string"),
        ({"detail": {"x": [{"prefix": {"nope": "a"}}]}}, "equals-ignore-case"),
        ({"detail": {"x": [{"suffix": None}]}}, "suffix needs a string"),
        ({"detail": {"x": [{"regex": "a"}]}}, "unknown filter 'regex'"),
        ({"detail": {"x": [{"prefix": "a", "suffix": "b"}]}}, "one key"),
        ({"detail": {"x": [{"exists": "yes"}]}}, "exists takes true or false"),
        ({"detail": {"x": [{"numeric": [">"]}]}}, "numeric takes"),
        ({"detail": {"x": [{"numeric": ["~", 1]}]}}, "unknown numeric operator"),
        ({"detail": {"x": [{"numeric": ["<", 5, ">", 1]}]}}, "lower bound"),
        ({"detail": {"x": [{"numeric": [">", 5, "<", 1]}]}}, "lower bound"),
        ({"detail": {"x": [{"numeric": [">", "1"]}]}}, "numeric takes"),
        ({"detail": {"x": [{"numeric": [">", True]}]}}, "numeric takes"),
        ({"detail": {"x": [{"anything-but": []}]}}, "anything-but takes strings"),
        ({"detail": {"x": [{"anything-but": [None]}]}}, "anything-but takes strings"),
        ({"detail": {"x": [{"anything-but": {"exists": True}}]}}, "cannot take 'exists'"),
        ({"detail": {"x": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}}, "one filter"),
        ({"detail": {"x": [{"anything-but": {"equals-ignore-case": []}}]}}, "needs a value"),
        ({"detail": {"x": [{"wildcard": "a**"}]}}, "consecutive stars"),
        ({"detail": {"x": [{"wildcard": 3}]}}, "wildcard needs a string"),
        ({"detail": {"x": [{"equals-ignore-case": 3}]}}, "equals-ignore-case needs a string"),
        ({"detail": {"x": [{"cidr": "10.0.0.0/99"}]}}, "cidr needs a network"),
        ({"$or": [{"source": ["a"]}]}, "$or takes an array of at least two"),
        ({"$or": [{"source": ["a"]}, {}]}, r"$or[1]: a pattern must be"),
        ({"detail": {"x": [float("nan")]}}, "not a JSON number"),
    ],
)
def test_bad_patterns_are_refused_saying_where_and_why(pattern: Any, message: str) -> None:
    with pytest.raises(PatternError) as refused:
        EventPattern.parse(pattern)
    assert message in str(refused.value)
