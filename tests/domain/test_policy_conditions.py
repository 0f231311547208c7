"""Condition operators, one table of cases each, and the wildcard, ARN and variable matching that
conditions share with Action and Resource."""

from __future__ import annotations

import pytest

from cargohold.domain.policy.conditions import (
    Condition,
    condition_holds,
    parse_date,
    parse_operator,
)
from cargohold.domain.policy.evaluation import Context, normalize_context
from cargohold.domain.policy.matching import action_matches, arn_matches, literal, resolve


class _Absent:
    """A key missing from the request context (named so, in test ids that stay the same)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def holds(
    operator: str,
    key: str,
    values: str | list[str],
    context: Context,
    *,
    variables: bool = True,
) -> bool:
    parsed = parse_operator(operator)
    assert parsed is not None, operator
    wanted = (values,) if isinstance(values, str) else tuple(values)
    condition = Condition(operator=parsed, key=key, values=wanted)
    return condition_holds(condition, normalize_context(context), variables=variables)


def case(operator: str, values: str | list[str], given: object, expected: bool) -> object:
    """One row: the operator on key `k` with `values`, the context value of `k` (or ABSENT)."""
    return pytest.param(operator, values, given, expected, id=f"{operator}-{values}-{given}")


def run(operator: str, values: str | list[str], given: object, expected: bool) -> None:
    context: dict[str, str | list[str]] = {}
    if given is not ABSENT:
        assert isinstance(given, str | list)
        context["k"] = given
    assert holds(operator, "k", values, context) is expected


# -- the operator names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("StringEquals", ("StringEquals", "", False)),
        ("StringLikeIfExists", ("StringLike", "", True)),
        ("ForAnyValue:StringLike", ("StringLike", "ForAnyValue", False)),
        ("ForAllValues:StringNotEqualsIfExists", ("StringNotEquals", "ForAllValues", True)),
        ("Null", ("Null", "", False)),
        ("ArnNotLikeIfExists", ("ArnNotLike", "", True)),
        ("NotIpAddress", ("NotIpAddress", "", False)),
        ("BinaryEquals", ("BinaryEquals", "", False)),
    ],
)
def test_operator_names(name: str, parts: tuple[str, str, bool]) -> None:
    operator = parse_operator(name)
    assert operator is not None
    assert (operator.base, operator.qualifier, operator.if_exists) == parts


@pytest.mark.parametrize(
    "name",
    [
        "StringEqual",
        "stringequals",
        "NullIfExists",
        "IfExists",
        "ForAnyValue::StringEquals",
        "ForSomeValues:StringEquals",
        "ForAnyValue:",
        "StringEqualsIfExistsIfExists",
        "",
    ],
)
def test_unknown_operators(name: str) -> None:
    assert parse_operator(name) is None


# -- string operators ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "given", "expected"),
    [
        case("StringEquals", "alice", "alice", True),
        case("StringEquals", "alice", "Alice", False),
        case("StringEquals", ["bob", "alice"], "alice", True),
        case("StringEquals", "al*", "alice", False),
        case("StringEquals", "al*", "al*", True),
        case("StringEquals", "alice", ABSENT, False),
        case("StringNotEquals", "alice", "alice", False),
        case("StringNotEquals", "alice", "bob", True),
        case("StringNotEquals", ["alice", "bob"], "bob", False),
        case("StringNotEquals", "alice", ABSENT, True),
        case("StringEqualsIgnoreCase", "ALICE", "alice", True),
        case("StringEqualsIgnoreCase", "ALICE", "alicia", False),
        case("StringNotEqualsIgnoreCase", "ALICE", "alice", False),
        case("StringNotEqualsIgnoreCase", "ALICE", "bob", True),
        case("StringNotEqualsIgnoreCase", "ALICE", ABSENT, True),
        case("StringLike", "al*", "alice", True),
        case("StringLike", "al?ce", "alice", True),
        case("StringLike", "al?ce", "allice", False),
        case("StringLike", "*ice", "alice", True),
        case("StringLike", "AL*", "alice", False),
        case("StringLike", "a.c", "abc", False),
        case("StringLike", "team/*", "team/a/b", True),
        case("StringLike", ["x*", "a*"], "alice", True),
        case("StringLike", "a*", ABSENT, False),
        case("StringNotLike", "a*", "alice", False),
        case("StringNotLike", "a*", "bob", True),
        case("StringNotLike", ["a*", "b*"], "bob", False),
        case("StringNotLike", "a*", ABSENT, True),
        case("StringEqualsIfExists", "alice", ABSENT, True),
        case("StringEqualsIfExists", "alice", "bob", False),
        case("StringNotLikeIfExists", "a*", "alice", False),
        case("StringNotLikeIfExists", "a*", ABSENT, True),
    ],
)
def test_string_operators(operator: str, values: str, given: object, expected: bool) -> None:
    run(operator, values, given, expected)


# -- numeric operators --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "given", "expected"),
    [
        case("NumericEquals", "10", "10", True),
        case("NumericEquals", "10", "10.0", True),
        case("NumericEquals", "10", "11", False),
        case("NumericEquals", ["1", "2"], "2", True),
        case("NumericEquals", "10", "ten", False),
        case("NumericEquals", "ten", "10", False),
        case("NumericEquals", "10", ABSENT, False),
        case("NumericNotEquals", "10", "10", False),
        case("NumericNotEquals", "10", "11", True),
        case("NumericNotEquals", "10", ABSENT, True),
        case("NumericLessThan", "10", "9", True),
        case("NumericLessThan", "10", "10", False),
        case("NumericLessThan", "10", "-1.5", True),
        case("NumericLessThanEquals", "10", "10", True),
        case("NumericLessThanEquals", "10", "11", False),
        case("NumericGreaterThan", "10", "11", True),
        case("NumericGreaterThan", "10", "10", False),
        case("NumericGreaterThanEquals", "10", "10", True),
        case("NumericGreaterThanEquals", "10", "9.99", False),
        case("NumericGreaterThanEquals", "10", "NaN", False),
        case("NumericLessThanIfExists", "10", ABSENT, True),
    ],
)
def test_numeric_operators(operator: str, values: str, given: object, expected: bool) -> None:
    run(operator, values, given, expected)


# -- date operators -----------------------------------------------------------------------------

NOON = "2024-06-01T12:00:00Z"
NOON_EPOCH = "1717243200"


@pytest.mark.parametrize(
    ("operator", "values", "given", "expected"),
    [
        case("DateEquals", NOON, NOON, True),
        case("DateEquals", NOON, NOON_EPOCH, True),
        case("DateEquals", NOON_EPOCH, NOON, True),
        case("DateEquals", "2024-06-01T14:00:00+02:00", NOON, True),
        case("DateEquals", "2024-06-01T12:00:00.000Z", NOON, True),
        case("DateEquals", "2024-06-01T12:00:00", NOON, True),
        case("DateEquals", "2024-06-01", "2024-06-01T00:00:00Z", True),
        case("DateEquals", NOON, "2024-06-01T12:00:01Z", False),
        case("DateEquals", "not a date", NOON, False),
        case("DateNotEquals", NOON, NOON, False),
        case("DateNotEquals", NOON, "2024-06-02T12:00:00Z", True),
        case("DateNotEquals", NOON, ABSENT, True),
        case("DateLessThan", NOON, "2024-06-01T11:59:59Z", True),
        case("DateLessThan", NOON, NOON, False),
        case("DateLessThanEquals", NOON, NOON, True),
        case("DateGreaterThan", "2024-01-01", NOON, True),
        case("DateGreaterThan", "2025-01-01", NOON, False),
        case("DateGreaterThan", "2024-01-01", ABSENT, False),
        case("DateGreaterThanEquals", NOON_EPOCH, NOON, True),
        case("DateGreaterThanEquals", "1717243201", NOON, False),
        case("DateLessThanIfExists", NOON, ABSENT, True),
    ],
)
def test_date_operators(operator: str, values: str, given: object, expected: bool) -> None:
    run(operator, values, given, expected)


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("1717243200", 1717243200.0),
        ("2024-06-01T12:00:00Z", 1717243200.0),
        ("2024-06-01t12:00:00z", 1717243200.0),
        ("2024-06-01T12:00:00.5Z", 1717243200.5),
        ("2024-06-01", 1717200000.0),
        ("nope", None),
        ("2024-13-01", None),
    ],
)
def test_dates_read_as_aws_writes_them(text: str, epoch: float | None) -> None:
    assert parse_date(text) == epoch


# -- Bool, Binary, IP addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "given", "expected"),
    [
        case("Bool", "true", "true", True),
        case("Bool", "true", "false", False),
        case("Bool", "false", "false", True),
        case("Bool", "TRUE", "true", True),
        case("Bool", "true", ABSENT, False),
        case("BoolIfExists", "false", ABSENT, True),
        case("BinaryEquals", "QmluYXJ5", "QmluYXJ5", True),
        case("BinaryEquals", "QmluYXJ5", "QmluYXJ6", False),
        case("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
        case("IpAddress", "203.0.113.0/24", "203.0.114.7", False),
        case("IpAddress", "203.0.113.7", "203.0.113.7", True),
        case("IpAddress", "203.0.113.7/32", "203.0.113.8", False),
        case("IpAddress", ["10.0.0.0/8", "203.0.113.0/24"], "10.1.2.3", True),
        case("IpAddress", "2001:db8::/32", "2001:db8:1::5", True),
        case("IpAddress", "2001:db8::/32", "2001:db9::5", False),
        case("IpAddress", "2001:db8::/32", "203.0.113.7", False),
        case("IpAddress", "0.0.0.0/0", "2001:db8::1", False),
        case("IpAddress", "203.0.113.0/24", "not-an-ip", False),
        case("IpAddress", "bogus", "203.0.113.7", False),
        case("IpAddress", "203.0.113.0/24", ABSENT, False),
        case("NotIpAddress", "203.0.113.0/24", "203.0.113.7", False),
        case("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
        case("NotIpAddress", "203.0.113.0/24", ABSENT, True),
    ],
)
def test_bool_binary_and_ip_operators(
    operator: str, values: str, given: object, expected: bool
) -> None:
    run(operator, values, given, expected)


# -- ARN operators ------------------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/deploy"


@pytest.mark.parametrize(
    ("operator", "values", "given", "expected"),
    [
        case("ArnEquals", ROLE, ROLE, True),
        case("ArnEquals", "arn:aws:iam::123456789012:role/*", ROLE, True),
        case("ArnLike", "arn:aws:iam::*:role/deploy", ROLE, True),
        case("ArnLike", "arn:aws:iam::123456789012:role/dep?oy", ROLE, True),
        case("ArnLike", "arn:aws:iam::123456789012:user/*", ROLE, False),
        case("ArnLike", "arn:aws:iam::*", ROLE, True),
        case("ArnLike", "arn:aws:iam::1234*:role/deploy", ROLE, True),
        case("ArnLike", "arn:aws:iam:*:role/deploy", ROLE, True),
        case("ArnLike", "arn:aws:iam::1*2:role/deploy", ROLE, True),
        case("ArnLike", "arn:aws:iam:*2:role/deploy", ROLE, False),
        case("ArnLike", ROLE, "not-an-arn", False),
        case("ArnLike", "arn:aws:IAM::123456789012:role/deploy", ROLE, False),
        case("ArnNotEquals", ROLE, ROLE, False),
        case("ArnNotEquals", ROLE, "arn:aws:iam::123456789012:role/other", True),
        case("ArnNotLike", "arn:aws:iam::*:role/*", ROLE, False),
        case("ArnNotLike", "arn:aws:iam::*:user/*", ROLE, True),
        case("ArnNotLike", "arn:aws:iam::*:user/*", ABSENT, True),
        case("ArnLikeIfExists", "arn:aws:iam::*:user/*", ABSENT, True),
    ],
)
def test_arn_operators(operator: str, values: str, given: object, expected: bool) -> None:
    run(operator, values, given, expected)


# -- Null -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "given", "expected"),
    [
        ("true", ABSENT, True),
        ("true", "x", False),
        ("false", "x", True),
        ("false", ABSENT, False),
        ("False", "x", True),
        (["true", "false"], ABSENT, True),
        ("true", [], True),
        ("false", ["a"], True),
    ],
)
def test_null(values: str, given: object, expected: bool) -> None:
    run("Null", values, given, expected)


# -- set operators over multivalued keys --------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "given", "expected"),
    [
        case("ForAllValues:StringEquals", ["env", "team"], ["env"], True),
        case("ForAllValues:StringEquals", ["env", "team"], ["env", "team"], True),
        case("ForAllValues:StringEquals", ["env", "team"], ["env", "cost"], False),
        case("ForAllValues:StringEquals", ["env"], ABSENT, True),
        case("ForAllValues:StringEquals", ["env"], [], True),
        case("ForAllValues:StringLike", "env*", ["env", "environment"], True),
        case("ForAllValues:StringNotLike", "key1*", ["key2:audit"], True),
        case("ForAllValues:StringNotLike", "key1*", ["key1:hr", "key2:x"], False),
        case("ForAllValues:StringNotLike", "key1*", ABSENT, True),
        case("ForAnyValue:StringEquals", ["env", "team"], ["cost", "team"], True),
        case("ForAnyValue:StringEquals", ["env", "team"], ["cost"], False),
        case("ForAnyValue:StringEquals", ["env"], ABSENT, False),
        case("ForAnyValue:StringEquals", ["env"], [], False),
        case("ForAnyValue:StringNotEquals", "env", ["env", "cost"], True),
        case("ForAnyValue:StringNotEquals", "env", ["env"], False),
        case("ForAnyValue:StringEqualsIgnoreCase", "ENV", ["env"], True),
        case("ForAnyValue:StringEqualsIfExists", "env", ABSENT, True),
        case("StringEquals", "team", ["env", "team"], True),
        case("StringNotEquals", "team", ["env", "team"], False),
        case("StringNotEquals", "team", ["env", "cost"], True),
    ],
)
def test_set_operators(operator: str, values: str, given: object, expected: bool) -> None:
    run(operator, values, given, expected)


# -- keys and policy variables in condition values -----------------------------------------------


def test_condition_keys_ignore_case() -> None:
    context = {"AWS:SourceIP": "203.0.113.7"}
    assert holds("IpAddress", "aws:sourceip", "203.0.113.0/24", context)
    assert holds("StringEquals", "Aws:Username", "alice", {"aws:username": "alice"})


def test_variables_in_string_values() -> None:
    context = {"aws:username": "alice", "s3:prefix": "home/alice/docs"}
    assert holds("StringLike", "s3:prefix", "home/${aws:username}/*", context)
    assert not holds(
        "StringLike", "s3:prefix", "home/${aws:username}/*", {**context, "aws:username": "bob"}
    )


def test_variables_only_with_version_2012() -> None:
    context = {"aws:username": "alice", "k": "alice"}
    assert holds("StringEquals", "k", "${aws:username}", context)
    assert not holds("StringEquals", "k", "${aws:username}", context, variables=False)
    assert holds("StringEquals", "k", "${aws:username}", {"k": "${aws:username}"}, variables=False)


def test_variables_resolve_in_arn_and_bool_values_but_not_in_ip_or_numbers() -> None:
    context = {
        "aws:PrincipalAccount": "123456789012",
        "aws:PrincipalArn": "arn:aws:iam::123456789012:role/x",
        "aws:SecureTransport": "true",
        "flag": "true",
        "n": "5",
    }
    arn = "arn:aws:iam::${aws:PrincipalAccount}:role/*"
    assert holds("ArnLike", "aws:PrincipalArn", arn, context)
    assert holds("Bool", "aws:SecureTransport", "${flag}", context)
    assert not holds("NumericEquals", "n", "${n}", context)


def test_a_variable_without_value_matches_nothing() -> None:
    assert not holds("StringEquals", "k", "${aws:username}", {"k": ""})
    assert holds("StringNotEquals", "k", "${aws:username}", {"k": "x"})
    assert holds("StringEquals", "k", "${aws:username, 'nobody'}", {"k": "nobody"})


def test_escaped_wildcards_stay_literal() -> None:
    assert holds("StringLike", "k", "a${*}b", {"k": "a*b"})
    assert not holds("StringLike", "k", "a${*}b", {"k": "axb"})
    assert holds("StringLike", "k", "a${?}", {"k": "a?"})
    assert holds("StringEquals", "k", "cost${$}", {"k": "cost$"})


def test_wildcards_a_variable_brings_in_stay_literal() -> None:
    context = {"aws:username": "a*", "k": "abc"}
    assert not holds("StringLike", "k", "${aws:username}", context)
    assert holds("StringLike", "k", "${aws:username}", {**context, "k": "a*"})


# -- Action and ARN matching --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("ecr:PutImage", "ecr:PutImage", True),
        ("ECR:putimage", "ecr:PutImage", True),
        ("ecr:*", "ecr:PutImage", True),
        ("*", "ecr:PutImage", True),
        ("ecr:Put*", "ecr:PutImage", True),
        ("ecr:Batch*Image", "ecr:BatchGetImage", True),
        ("ecr:?utImage", "ecr:PutImage", True),
        ("ecr:Get*", "ecr:PutImage", False),
        ("ecr:PutImage", "ecr:PutImages", False),
        ("ecr-public:*", "ecr:PutImage", False),
        ("ec*", "ecr:PutImage", True),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


REPO = "arn:aws:ecr:us-east-1:123456789012:repository/team/app"


@pytest.mark.parametrize(
    ("pattern", "arn", "expected"),
    [
        ("*", REPO, True),
        ("*", "*", True),
        (REPO, REPO, True),
        ("arn:aws:ecr:us-east-1:123456789012:repository/*", REPO, True),
        ("arn:aws:ecr:*:123456789012:repository/team/*", REPO, True),
        ("arn:aws:ecr:*:*:*", REPO, True),
        ("arn:aws:ecr:us-east-?:123456789012:repository/team/app", REPO, True),
        ("arn:aws:ecr:us-west-2:123456789012:repository/*", REPO, False),
        ("arn:aws:ecr:us-east-1:999999999999:repository/*", REPO, False),
        ("arn:aws:ecr:us-east-1:123456789012:repository/team", REPO, False),
        ("arn:aws:ecr:us-east-1:123456789012:repository/Team/app", REPO, False),
        ("arn:aws:ecr:*", REPO, True),
        # A star that ends a segment reaches across colons; one inside a segment does not.
        ("arn:aws:ecr:us-*:repository/team/app", REPO, True),
        ("arn:aws:ecr:*st-1:123456789012:repository/team/app", REPO, True),
        ("arn:aws:ecr:us*1:repository/team/app", REPO, False),
        ("arn:aws:ecr:us-east-1:123456789012:repository/?eam/app", REPO, True),
        ("arn:aws:ecr:us-east-1?123456789012:repository/team/app", REPO, False),
        ("arn:aws:ecr:*:*:repository/*", "*", False),
        ("arn:aws:iam::123456789012:role/a:b", "arn:aws:iam::123456789012:role/a:b", True),
    ],
)
def test_arn_matching(pattern: str, arn: str, expected: bool) -> None:
    resolved = resolve(pattern, {}, variables=True)
    assert resolved is not None
    assert arn_matches(resolved, arn) is expected


def test_resolve_replaces_variables_and_keeps_wildcards() -> None:
    context = normalize_context({"aws:username": "alice", "aws:TagKeys": ["a", "b"]})
    pattern = resolve("arn:aws:ecr:*:*:repository/${aws:username}/*", context, variables=True)
    assert pattern is not None
    assert literal(pattern) == "arn:aws:ecr:*:*:repository/alice/*"
    assert resolve("x/${aws:TagKeys}", context, variables=True) is None
    assert resolve("x/${aws:userid}", context, variables=True) is None
    assert resolve("x/${aws:userid,'anon'}", context, variables=True) == "x/anon"
    assert resolve("x/${aws:username}", context, variables=False) == "x/${aws:username}"
