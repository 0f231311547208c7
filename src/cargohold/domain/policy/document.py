"""Policy documents: the JSON an administrator writes, checked as AWS checks it, read into values.

`parse_policy(text, kind)` is the only way in: it refuses what IAM (or ECR) would refuse, with the
same error code and message (see `validation` and `errors`), and returns a `Policy` whose
statements keep every element in a form evaluation can use without looking at JSON again.

Version matters beyond validation: policy variables (`${aws:username}`) are resolved only in
documents of Version 2012-10-17; in a document of 2008-10-17, or one with no Version (which AWS
reads as 2008-10-17), `${…}` is plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cargohold.domain import jsondoc
from cargohold.domain.policy import errors
from cargohold.domain.policy.conditions import Condition, parse_operator
from cargohold.domain.policy.errors import Malformed, PolicyError
from cargohold.domain.policy.kinds import PolicyKind, check_size
from cargohold.domain.policy.principals import Principals
from cargohold.domain.policy.validation import (
    CURRENT_VERSION,
    RawStatement,
    condition_text,
    validate,
)

Effect = Literal["Allow", "Deny"]
ALLOW: Effect = "Allow"
DENY: Effect = "Deny"


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement. A `not_…` flag says the element was written as its Not- form."""

    effect: Effect
    actions: tuple[str, ...]
    not_actions: bool = False
    #: None where the document may not name resources: the statement is about the resource the
    #: policy is attached to (an ECR repository, a role for its trust policy).
    resources: tuple[str, ...] | None = None
    not_resources: bool = False
    #: None in identity-based policies, where the principal is whoever the policy is attached to.
    principals: Principals | None = None
    not_principals: bool = False
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind
    statements: tuple[Statement, ...]
    #: As written; None when the document has no Version (AWS reads it as 2008-10-17).
    version: str | None = None
    id: str | None = None

    @property
    def variables(self) -> bool:
        """Whether `${…}` policy variables are resolved (Version 2012-10-17 only)."""
        return self.version == CURRENT_VERSION

    def principal_arns(self) -> tuple[str, ...]:
        """The user, role and session ARNs the policy names, so a caller can check they exist
        (ECR answers "Principal not found" and IAM "Invalid principal in policy" otherwise)."""
        found: dict[str, None] = {}
        for statement in self.statements:
            if statement.principals is not None:
                found.update(dict.fromkeys(statement.principals.arns()))
        return tuple(found)


def parse_policy(text: str, kind: PolicyKind) -> Policy:
    """The policy `text` holds, or a `PolicyError` in the words AWS uses for its kind."""
    check_size(text, kind)
    try:
        try:
            document = jsondoc.loads(text)
        except ValueError:
            raise Malformed(errors.SYNTAX_ERRORS) from None
        statements = validate(document, kind)
    except Malformed as fault:
        raise _policy_error(kind, fault.reason) from None
    assert isinstance(document, dict)
    version, policy_id = document.get("Version"), document.get("Id")
    return Policy(
        kind=kind,
        statements=tuple(_statement(raw) for raw in statements),
        version=version if isinstance(version, str) else None,
        id=policy_id if isinstance(policy_id, str) else None,
    )


def _policy_error(kind: PolicyKind, reason: str) -> PolicyError:
    if kind is PolicyKind.REPOSITORY:
        return PolicyError(
            errors.INVALID_PARAMETER, errors.INVALID_REPOSITORY_POLICY, reason=reason
        )
    if kind is PolicyKind.REGISTRY:
        return PolicyError(errors.INVALID_PARAMETER, errors.INVALID_REGISTRY_POLICY, reason=reason)
    return PolicyError(errors.MALFORMED_POLICY_DOCUMENT, reason)


# -- from validated JSON to values --------------------------------------------------------------


def _statement(raw: RawStatement) -> Statement:
    effect: Effect = ALLOW if raw["Effect"] == ALLOW else DENY
    sid = raw.get("Sid")
    resources = _strings(raw.get("Resource", raw.get("NotResource")))
    principal = raw.get("Principal", raw.get("NotPrincipal"))
    return Statement(
        effect=effect,
        actions=_strings(raw.get("Action", raw.get("NotAction"))) or (),
        not_actions="NotAction" in raw,
        resources=resources,
        not_resources="NotResource" in raw,
        principals=None if principal is None else _principals(principal),
        not_principals="NotPrincipal" in raw,
        conditions=_conditions(raw.get("Condition", {})),
        sid=sid if isinstance(sid, str) and sid else None,
    )


def _strings(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(condition_text(v) for v in value)
    return (condition_text(value),)


def _principals(raw: object) -> Principals:
    if raw == "*":
        return Principals(everyone=True)
    assert isinstance(raw, dict)

    def values(name: str) -> tuple[str, ...]:
        return _strings(raw.get(name)) or ()

    return Principals(
        aws=values("AWS"),
        services=values("Service"),
        federated=values("Federated"),
        canonical_users=values("CanonicalUser"),
    )


def _conditions(raw: object) -> tuple[Condition, ...]:
    assert isinstance(raw, dict)
    found: list[Condition] = []
    for name, block in raw.items():
        operator = parse_operator(name)
        if operator is None:  # an unknown operator with an empty block: nothing to check
            continue
        for key, values in block.items():
            found.append(Condition(operator=operator, key=key, values=_strings(values) or ()))
    return tuple(found)
