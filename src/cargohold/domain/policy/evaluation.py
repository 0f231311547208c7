"""The decision: may this caller perform this action on this resource, given these policies?

AWS's evaluation logic, as its IAM user guide lays it out, for the policy types a registry has
(identity-based policies, and resource-based ones: the repository policy, the registry policy, a
role's trust policy):

1. A request is denied unless something allows it.
2. An explicit Deny in any applicable statement of any policy wins over every Allow.
3. Within one account, an Allow in the caller's identity-based policies *or* in a resource-based
   policy suffices. A resource-based policy that names only the caller's account delegates to
   the account and allows nothing by itself: the caller then needs an identity-based Allow.
4. Across accounts, both must allow: the resource owner's resource-based policy must name the
   caller (or its account, or everyone), and the caller's identity-based policies must allow.
5. The account root user is allowed by identity without any policy ("all requests are denied by
   default, except those of the AWS account root user, which has full access"); a Deny in a
   resource-based policy still binds it, and across accounts it still needs the resource side.
6. A role's trust policy must name the caller (or its account) even within the account: an
   identity-based Allow of sts:AssumeRole alone does not let anyone assume a role.
7. An AWS service principal is allowed only by a resource-based policy that names it.

The decision says which of AWS's four denials it is, so the caller can word the message as AWS
does: "… with an explicit deny in an identity-based policy", "… because no identity-based
policy allows the ecr:PutImage action", and the same for resource-based policies. Where several
apply, the identity-based deny is named before the resource-based one; a cross-account request
that no resource-based policy allows says so before it speaks of identity-based policies.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cargohold.domain.policy.conditions import conditions_hold
from cargohold.domain.policy.document import DENY, Policy, Statement
from cargohold.domain.policy.kinds import PolicyKind
from cargohold.domain.policy.matching import (
    NormalizedContext,
    action_matches,
    arn_matches,
    resolve,
)
from cargohold.domain.policy.principals import Caller, Grant, excludes, grant

#: Condition keys and their values (one string, or several for a multivalued key).
Context = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    principal: Caller
    #: `service:Action`, as policies name it: `ecr:PutImage`.
    action: str
    #: The ARN acted on, or "*" for actions on no particular resource (GetAuthorizationToken).
    resource: str
    #: The account that owns the resource; None for the caller's own (as with "*").
    resource_account: str | None = None
    context: Context = field(default_factory=dict)


class Denial(enum.Enum):
    """Why a request was denied, in the terms of AWS's access-denied messages."""

    EXPLICIT_DENY_IDENTITY = "identity"
    EXPLICIT_DENY_RESOURCE = "resource"
    NO_IDENTITY_ALLOW = "no-identity-allow"
    NO_RESOURCE_ALLOW = "no-resource-allow"

    @property
    def explicit(self) -> bool:
        return self in (Denial.EXPLICIT_DENY_IDENTITY, Denial.EXPLICIT_DENY_RESOURCE)

    def reason(self, action: str) -> str:
        """The tail of AWS's message: `with an explicit deny in …` or `because no … allows …`."""
        if self is Denial.EXPLICIT_DENY_IDENTITY:
            return "with an explicit deny in an identity-based policy"
        if self is Denial.EXPLICIT_DENY_RESOURCE:
            return "with an explicit deny in a resource-based policy"
        kind = "identity-based" if self is Denial.NO_IDENTITY_ALLOW else "resource-based"
        return f"because no {kind} policy allows the {action} action"


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    allowed: bool
    denial: Denial | None = None

    @property
    def explicit_deny(self) -> bool:
        return self.denial is not None and self.denial.explicit

    def message(self, principal_arn: str, action: str, resource: str) -> str:
        """AWS's access-denied text: `User: arn:… is not authorized to perform: …`."""
        text = (
            f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
        )
        return f"{text} {self.denial.reason(action)}" if self.denial is not None else text


ALLOWED = PolicyDecision(allowed=True)


def evaluate(
    request: AuthorizationRequest,
    identity_policies: Sequence[Policy] = (),
    resource_policies: Sequence[Policy] = (),
) -> PolicyDecision:
    """Decide `request` under the caller's identity-based policies and the resource-based
    policies of the resource's owner (repository policy, registry policy, trust policy)."""
    context = normalize_context(request.context)
    identity_deny, identity_allow = _identity_effects(identity_policies, request, context)
    resource_deny, resource_grant = _resource_effects(resource_policies, request, context)
    if identity_deny:
        return PolicyDecision(False, Denial.EXPLICIT_DENY_IDENTITY)
    if resource_deny:
        return PolicyDecision(False, Denial.EXPLICIT_DENY_RESOURCE)
    caller = request.principal
    if caller.kind == "service":
        if resource_grant is Grant.DIRECT:
            return ALLOWED
        return PolicyDecision(False, Denial.NO_RESOURCE_ALLOW)
    same_account = (request.resource_account or caller.account_id) == caller.account_id
    if same_account and resource_grant is Grant.DIRECT:
        return ALLOWED
    trust = any(policy.kind is PolicyKind.TRUST for policy in resource_policies)
    if (trust or not same_account) and resource_grant is Grant.NONE:
        return PolicyDecision(False, Denial.NO_RESOURCE_ALLOW)
    if identity_allow or caller.kind == "root":
        return ALLOWED
    return PolicyDecision(False, Denial.NO_IDENTITY_ALLOW)


def normalize_context(context: Context) -> NormalizedContext:
    """Condition keys are case-insensitive: the context with lower-cased names, values as tuples."""
    return {
        key.lower(): (value,) if isinstance(value, str) else tuple(value)
        for key, value in context.items()
    }


def _identity_effects(
    policies: Sequence[Policy], request: AuthorizationRequest, context: NormalizedContext
) -> tuple[bool, bool]:
    """(an applicable Deny, an applicable Allow) among identity-based policies."""
    deny = allow = False
    for policy in policies:
        for statement in policy.statements:
            if _applies(statement, policy, request, context):
                if statement.effect == DENY:
                    return True, allow
                allow = True
    return deny, allow


def _resource_effects(
    policies: Sequence[Policy], request: AuthorizationRequest, context: NormalizedContext
) -> tuple[bool, Grant]:
    """(an applicable Deny, the strongest applicable Allow) among resource-based policies."""
    best = Grant.NONE
    for policy in policies:
        for statement in policy.statements:
            named = _principal_grant(statement, request.principal)
            if named is Grant.NONE or not _applies(statement, policy, request, context):
                continue
            if statement.effect == DENY:
                return True, best
            best = max(best, named)
    return False, best


def _principal_grant(statement: Statement, caller: Caller) -> Grant:
    if statement.principals is None:
        return Grant.NONE
    if statement.not_principals:
        return Grant.NONE if excludes(statement.principals, caller) else Grant.DIRECT
    return grant(statement.principals, caller)


def _applies(
    statement: Statement,
    policy: Policy,
    request: AuthorizationRequest,
    context: NormalizedContext,
) -> bool:
    """Whether the statement's actions, resources and conditions all cover the request."""
    named = any(action_matches(pattern, request.action) for pattern in statement.actions)
    if named == statement.not_actions:
        return False
    if statement.resources is not None:
        named = _names_resource(statement.resources, policy, request.resource, context)
        if named == statement.not_resources:
            return False
    return conditions_hold(statement.conditions, context, variables=policy.variables)


def _names_resource(
    resources: tuple[str, ...], policy: Policy, resource: str, context: NormalizedContext
) -> bool:
    for text in resources:
        pattern = resolve(text, context, variables=policy.variables)
        if pattern is not None and arn_matches(pattern, resource):
            return True
    return False
