"""The `Condition` element: its operators and how a condition holds against a request's context.

The rules, as the IAM JSON policy reference gives them:
- Several values for one key are ORed; several keys, and several operators, are ANDed.
- A key missing from the context makes a condition false, except that the negated operators
  (StringNotEquals, StringNotLike, NumericNotEquals, DateNotEquals, NotIpAddress, ArnNotEquals,
  ArnNotLike) are then true, every `…IfExists` operator is true, and `Null` tests the absence.
- `ForAllValues:` holds when every context value matches (and when the key is missing or empty);
  `ForAnyValue:` when at least one does (never when the key is missing or empty).
- A negated operator is the negation of its positive form: `StringNotEquals` with [a, b] holds
  when the value is neither a nor b. Used without a set operator on a multivalued key, an
  operator holds when any of the key's values matches (its negated form when none does).
- Policy variables resolve in the values of the String, Arn and Bool operators only.
- Dates are ISO 8601 (`2024-01-31`, `2024-01-31T12:00:00Z`, with an offset or fractions) or epoch
  seconds, on either side. A policy value that cannot be read as a number, date or CIDR block
  matches nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from cargohold.domain.policy.matching import (
    NormalizedContext,
    arn_matches,
    glob,
    literal,
    resolve,
    to_pattern,
)

Qualifier = Literal["", "ForAnyValue", "ForAllValues"]
_QUALIFIERS: Final[tuple[Qualifier, ...]] = ("ForAnyValue", "ForAllValues")
_IF_EXISTS = "IfExists"
NULL = "Null"


@dataclass(frozen=True, slots=True)
class Operator:
    """A condition operator as written: `ForAnyValue:StringLikeIfExists` → its three parts."""

    name: str
    base: str
    qualifier: Qualifier = ""
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """One key of one operator block: `"StringEquals": {"aws:username": ["a", "b"]}`."""

    operator: Operator
    key: str
    values: tuple[str, ...]


Match = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class _Spec:
    match: Match  # policy value (resolved pattern) against one context value
    negated: bool = False
    variables: bool = False


def _string_equals(pattern: str, value: str) -> bool:
    return literal(pattern) == value


def _string_equals_ignore_case(pattern: str, value: str) -> bool:
    return literal(pattern).casefold() == value.casefold()


def _string_like(pattern: str, value: str) -> bool:
    return glob(pattern, value)


def _arn_like(pattern: str, value: str) -> bool:
    return arn_matches(pattern, value)


def _bool(pattern: str, value: str) -> bool:
    return literal(pattern).lower() == value.lower()


def _binary(pattern: str, value: str) -> bool:
    return pattern == value


def _numeric(compare: Callable[[Decimal, Decimal], bool]) -> Match:
    def match(policy: str, value: str) -> bool:
        wanted, given = parse_number(policy), parse_number(value)
        return wanted is not None and given is not None and compare(given, wanted)

    return match


def _date(compare: Callable[[float, float], bool]) -> Match:
    def match(policy: str, value: str) -> bool:
        wanted, given = parse_date(policy), parse_date(value)
        return wanted is not None and given is not None and compare(given, wanted)

    return match


def _ip_address(policy: str, value: str) -> bool:
    try:
        network = ipaddress.ip_network(policy.strip(), strict=False)
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return address.version == network.version and address in network


_OPERATORS: Final[dict[str, _Spec]] = {
    "StringEquals": _Spec(_string_equals, variables=True),
    "StringNotEquals": _Spec(_string_equals, negated=True, variables=True),
    "StringEqualsIgnoreCase": _Spec(_string_equals_ignore_case, variables=True),
    "StringNotEqualsIgnoreCase": _Spec(_string_equals_ignore_case, negated=True, variables=True),
    "StringLike": _Spec(_string_like, variables=True),
    "StringNotLike": _Spec(_string_like, negated=True, variables=True),
    "NumericEquals": _Spec(_numeric(lambda a, b: a == b)),
    "NumericNotEquals": _Spec(_numeric(lambda a, b: a == b), negated=True),
    "NumericLessThan": _Spec(_numeric(lambda a, b: a < b)),
    "NumericLessThanEquals": _Spec(_numeric(lambda a, b: a <= b)),
    "NumericGreaterThan": _Spec(_numeric(lambda a, b: a > b)),
    "NumericGreaterThanEquals": _Spec(_numeric(lambda a, b: a >= b)),
    "DateEquals": _Spec(_date(lambda a, b: a == b)),
    "DateNotEquals": _Spec(_date(lambda a, b: a == b), negated=True),
    "DateLessThan": _Spec(_date(lambda a, b: a < b)),
    "DateLessThanEquals": _Spec(_date(lambda a, b: a <= b)),
    "DateGreaterThan": _Spec(_date(lambda a, b: a > b)),
    "DateGreaterThanEquals": _Spec(_date(lambda a, b: a >= b)),
    "Bool": _Spec(_bool, variables=True),
    "BinaryEquals": _Spec(_binary),
    "IpAddress": _Spec(_ip_address),
    "NotIpAddress": _Spec(_ip_address, negated=True),
    "ArnEquals": _Spec(_arn_like, variables=True),
    "ArnLike": _Spec(_arn_like, variables=True),
    "ArnNotEquals": _Spec(_arn_like, negated=True, variables=True),
    "ArnNotLike": _Spec(_arn_like, negated=True, variables=True),
}

#: Every operator name a policy may use, before `ForAnyValue:`/`ForAllValues:` and `IfExists`.
OPERATOR_NAMES: Final = frozenset({*_OPERATORS, NULL})


def parse_operator(name: str) -> Operator | None:
    """The operator `name` spells, or None if IAM knows no such operator."""
    qualifier: Qualifier = ""
    base = name
    for candidate in _QUALIFIERS:
        if name.startswith(candidate + ":"):
            qualifier, base = candidate, name[len(candidate) + 1 :]
            break
    if_exists = base.endswith(_IF_EXISTS) and base != _IF_EXISTS
    if if_exists:
        base = base[: -len(_IF_EXISTS)]
    if base not in OPERATOR_NAMES or (base == NULL and if_exists):
        return None
    return Operator(name=name, base=base, qualifier=qualifier, if_exists=if_exists)


def conditions_hold(
    conditions: Iterable[Condition], context: NormalizedContext, *, variables: bool
) -> bool:
    """Whether every condition of a statement holds (keys and operators are ANDed)."""
    return all(condition_holds(c, context, variables=variables) for c in conditions)


def condition_holds(condition: Condition, context: NormalizedContext, *, variables: bool) -> bool:
    operator = condition.operator
    present = context.get(condition.key.lower(), ())
    if operator.base == NULL:
        return _null_holds(condition.values, bool(present))
    spec = _OPERATORS[operator.base]
    if not present:
        if operator.if_exists or operator.qualifier == "ForAllValues":
            return True
        if operator.qualifier == "ForAnyValue":
            return False
        return spec.negated
    patterns = _patterns(condition.values, context, variables=variables and spec.variables)

    def matches(value: str) -> bool:
        return any(spec.match(pattern, value) for pattern in patterns)

    if operator.qualifier == "ForAllValues":
        return all(matches(value) != spec.negated for value in present)
    if operator.qualifier == "ForAnyValue":
        return any(matches(value) != spec.negated for value in present)
    return any(matches(value) for value in present) != spec.negated


def _patterns(
    values: tuple[str, ...], context: NormalizedContext, *, variables: bool
) -> tuple[str, ...]:
    if not variables:
        return tuple(to_pattern(value) for value in values)
    resolved = (resolve(value, context, variables=True) for value in values)
    return tuple(pattern for pattern in resolved if pattern is not None)


def _null_holds(values: tuple[str, ...], present: bool) -> bool:
    """`"Null": {"k": "true"}` holds when k is absent, `"false"` when it is present."""
    return any(value.lower() == ("false" if present else "true") for value in values)


_EPOCH = re.compile(r"-?\d+(?:\.\d+)?")


def parse_date(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 date or date-time, or of epoch seconds."""
    text = text.strip()
    if _EPOCH.fullmatch(text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
