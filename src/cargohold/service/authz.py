"""Authorization: the one decision every front asks for, `authorize(principal, action,
resource_arn, context)`.

The decision is the policy engine's (`cargohold.domain.policy.evaluate`) over what the request
brings together:

- the caller's identity-based policies (`IdentityPolicySource`: a user's inline and attached
  managed policies and its groups'; a role session's role's), and the session policies that
  narrow an assumed role's session;
- the resource owner's resource-based policies (`ResourcePolicySource`: an ECR repository's
  policy and its registry's policy, a role's trust policy), the owner's account, and the
  resource's tags;
- the condition keys: the global ones that follow from the caller and the clock, the resource's
  tags (`aws:ResourceTag/…`, `ecr:ResourceTag/…`), and what the front knows of the request
  (`aws:SourceIp`, `aws:SecureTransport`, `aws:RequestTag/…`, `aws:TagKeys`).

Every decision, allowed or denied, is handed to the audit log (`AuditSink`), with what the front
tells of the request (`RequestRecord`). Denials carry AWS's wording: "User: arn:… is not
authorized to perform: ecr:PutImage on resource: arn:… because no identity-based policy allows
the ecr:PutImage action".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cargohold.domain.errors import AccessDenied
from cargohold.domain.policy import (
    AuthorizationRequest,
    Caller,
    Policy,
    PolicyDecision,
    evaluate,
    global_context,
)
from cargohold.domain.principal import Principal
from cargohold.service.readcache import ReadCache

log = logging.getLogger(__name__)

#: The account field of AWS's own resources (AWS managed policies).
AWS_ACCOUNT = "aws"
#: Services whose denials AWS words without a reason ("… on resource: arn:…").
_TERSE_DENIALS = frozenset({"sts"})

#: Condition keys and their values (one string, or several for multivalued keys), as IAM
#: policies see them: `aws:SourceIp`, `aws:SecureTransport`, `aws:RequestTag/…` and so on.
Context = Mapping[str, str | Sequence[str]]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    #: Whether a Deny statement decided (AWS words the denial differently).
    explicit_deny: bool = False
    #: AWS's text for a denial, as `AccessDeniedException` and `/v2/` DENIED carry it.
    message: str = ""


@dataclass(frozen=True, slots=True)
class ResourceSide:
    """What the resource's owner contributes to a decision."""

    #: The account that owns the resource; None for the caller's own (resource "*", or what
    #: belongs to no account, such as AWS managed policies).
    account_id: str | None = None
    #: Its resource-based policies: repository and registry policy, or a role's trust policy.
    policies: tuple[Policy, ...] = ()
    #: Condition keys the resource carries (its tags).
    context: Mapping[str, str] = field(default_factory=dict)


class IdentityPolicySource(Protocol):
    """The identity-based side of a caller."""

    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        """A user's inline and attached managed policies and its groups'; a role session's
        role's."""
        ...

    async def session_policies(self, principal: Principal) -> Sequence[Policy] | None:
        """The policies passed when a role session was created, which narrow what its role's
        policies allow; None when nothing narrows the caller."""
        ...


class ResourcePolicySource(Protocol):
    async def resource_side(self, resource_arn: str, action: str) -> ResourceSide:
        """The owner, resource-based policies and tags of the resource an action acts on."""
        ...


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What a front tells the audit log about a request, beyond the decision itself."""

    #: `ecr.amazonaws.com`, …; by default the action's service.
    event_source: str | None = None
    #: The request's parameters as CloudTrail shows them (large and binary values left out).
    parameters: Mapping[str, Any] | None = None
    request_id: str | None = None
    user_agent: str | None = None
    region: str | None = None
    #: Where the request came from; else the context's `aws:SourceIp`.
    source_ip: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationRecord:
    """One decision, as the audit log receives it."""

    time: float
    principal: Principal
    action: str
    resource_arn: str
    resource_account: str
    decision: Decision
    source_ip: str | None
    request: RequestRecord


class Enforce(Protocol):
    """`Authorizer.authorize` as the fronts call it: raises `AccessDenied` (with AWS's words)
    unless the request is allowed. The composition root makes one over the authorizer."""

    async def __call__(
        self,
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any],
        *,
        record: RequestRecord | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class AuthenticationFailure:
    """Credentials that were presented and rejected (a wrong secret or signature, an unknown,
    inactive or expired key, a bad `/v2/` password), as the audit log receives it: no
    principal, only the access key id the request named, if any."""

    time: float
    #: The error the caller was answered with (`InvalidSignatureException`, `DENIED`, …).
    error_code: str
    error_message: str
    #: The operation the request was for (`ListImages`), or what it tried (`Authenticate`).
    event_name: str
    access_key_id: str | None
    request: RequestRecord


class AuditSink(Protocol):
    async def record(self, entry: AuthorizationRecord | AuthenticationFailure) -> None:
        """Keep the entry; must not raise for a problem of its own storage."""
        ...


class NoPolicies:
    """An `IdentityPolicySource` and `ResourcePolicySource` with nothing in it: only root is
    allowed, within its own account."""

    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        return ()

    async def session_policies(self, principal: Principal) -> Sequence[Policy] | None:
        return None

    async def resource_side(self, resource_arn: str, action: str) -> ResourceSide:
        return ResourceSide(account_id=resource_owner(resource_arn, action))


def resource_account(resource_arn: str) -> str | None:
    """The account id field of an ARN (`arn:partition:service:region:account:resource`); None
    for "*" and for ARNs of no account."""
    parts = resource_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[4] or None


def resource_owner(resource_arn: str, action: str) -> str | None:
    """The account a request's resource belongs to, for evaluation: None for the caller's own.

    AWS managed policies (`arn:aws:iam::aws:policy/…`) are every account's to read, as their
    own, and no account's to change: reading them is decided by the caller's policies alone,
    anything else is a request to a foreign account that no resource-based policy allows."""
    account = resource_account(resource_arn)
    if account == AWS_ACCOUNT:
        _, _, name = action.partition(":")
        return None if name.lower().startswith(("get", "list")) else AWS_ACCOUNT
    return account


def denial_message(
    principal: Principal, action: str, resource_arn: str, *, because: str = ""
) -> str:
    """`User: arn:… is not authorized to perform: ecr:X on resource: arn:… because …`."""
    message = (
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource_arn}"
    )
    return f"{message} {because}" if because else message


def caller_of(principal: Principal) -> Caller:
    """The principal as the policy engine sees it."""
    if principal.kind == "service":
        return Caller.service(principal.arn)
    return Caller(
        arn=principal.arn,
        account_id=principal.account_id,
        kind=principal.kind,
        role_arn=principal.role_arn,
    )


def principal_context(principal: Principal, now: float) -> dict[str, str]:
    """The global condition keys that follow from the caller and the time alone."""
    return global_context(
        caller_of(principal),
        now=now,
        userid=principal.principal_id,
        username=principal.username,
    )


def request_keys(context: Mapping[str, object] | None) -> dict[str, str | tuple[str, ...]]:
    """A front's condition keys as the engine takes them: booleans as "true"/"false", lists as
    tuples, keys without a value left out."""
    keys: dict[str, str | tuple[str, ...]] = {}
    for key, value in (context or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            keys[key] = "true" if value else "false"
        elif isinstance(value, str):
            keys[key] = value
        elif isinstance(value, Sequence):
            keys[key] = tuple(str(item) for item in value)
        else:
            keys[key] = str(value)
    return keys


#: What a cached decision is keyed by: the caller, the action, the resource, the request's keys.
DecisionKey = tuple[Principal, str, str, tuple[tuple[str, str | tuple[str, ...]], ...]]


class Authorizer:
    """Decides whether a principal may perform an action on a resource, and records it."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        identities: IdentityPolicySource | None = None,
        resources: ResourcePolicySource | None = None,
        audit: AuditSink | None = None,
        decisions: ReadCache[DecisionKey, Decision] | None = None,
    ) -> None:
        self._clock = clock
        # Decisions already made, by (principal, action, resource, request keys), kept as long
        # as the policies they were made from (see service.readcache): a pull asks the same
        # question of the same policies many times a second. Conditions on the time are thus
        # judged at most the cache's ttl late.
        self._decisions = decisions
        self._identities: IdentityPolicySource = identities or NoPolicies()
        self._resources: ResourcePolicySource = resources or NoPolicies()
        self._audit = audit

    async def authorize(
        self,
        principal: Principal,
        action: str,
        resource_arn: str,
        context: Mapping[str, object] | None = None,
        *,
        record: RequestRecord | None = None,
    ) -> Decision:
        """The decision for one request, recorded in the audit log."""
        now = self._clock()
        side = await self._resources.resource_side(resource_arn, action)
        decision = await self._cached_decision(principal, action, resource_arn, context, side, now)
        if self._audit is not None:
            request = record or RequestRecord()
            source_ip = request.source_ip or request_keys(context).get("aws:SourceIp")
            await self._audit.record(
                AuthorizationRecord(
                    time=now,
                    principal=principal,
                    action=action,
                    resource_arn=resource_arn,
                    resource_account=side.account_id or principal.account_id,
                    decision=decision,
                    source_ip=source_ip if isinstance(source_ip, str) else None,
                    request=request,
                )
            )
        if not decision.allowed:
            log.info("denied: %s", decision.message)
        return decision

    async def authentication_failed(
        self,
        error_code: str,
        error_message: str,
        *,
        event_name: str,
        access_key_id: str | None,
        record: RequestRecord,
    ) -> None:
        """Record in the audit log that credentials were presented and rejected."""
        if self._audit is not None:
            await self._audit.record(
                AuthenticationFailure(
                    time=self._clock(),
                    error_code=error_code,
                    error_message=error_message,
                    event_name=event_name,
                    access_key_id=access_key_id,
                    request=record,
                )
            )

    async def _cached_decision(
        self,
        principal: Principal,
        action: str,
        resource_arn: str,
        context: Mapping[str, object] | None,
        side: ResourceSide,
        now: float,
    ) -> Decision:
        if self._decisions is None:
            return await self._decide(principal, action, resource_arn, context, side, now)
        key = (principal, action, resource_arn, tuple(sorted(request_keys(context).items())))
        return await self._decisions.fetch(
            key, lambda: self._decide(principal, action, resource_arn, context, side, now)
        )

    async def simulate(
        self,
        principal: Principal,
        action: str,
        resource_arn: str,
        context: Mapping[str, object] | None = None,
        *,
        resource_policies: Callable[[ResourceSide], tuple[Policy, ...]],
    ) -> Decision:
        """The decision a request would get if the resource's policies were replaced by what
        `resource_policies` makes of the current ones (SetRepositoryPolicy's lock-out check).
        Records nothing."""
        side = await self._resources.resource_side(resource_arn, action)
        changed = ResourceSide(side.account_id, resource_policies(side), side.context)
        return await self._decide(principal, action, resource_arn, context, changed, self._clock())

    async def _decide(
        self,
        principal: Principal,
        action: str,
        resource_arn: str,
        context: Mapping[str, object] | None,
        side: ResourceSide,
        now: float,
    ) -> Decision:
        keys: dict[str, str | tuple[str, ...]] = dict(principal_context(principal, now))
        keys.update(side.context)
        keys.update(request_keys(context))
        request = AuthorizationRequest(
            principal=caller_of(principal),
            action=action,
            resource=resource_arn,
            resource_account=side.account_id,
            context=keys,
        )
        identity = await self._identities.identity_policies(principal)
        result = evaluate(request, identity, side.policies)
        if not result.allowed:
            return _denied(principal, action, resource_arn, result)
        sessions = await self._identities.session_policies(principal)
        if sessions is not None:
            # A session policy bounds what the role's policies allow: the request must also
            # be allowed with the session policies standing in for them.
            bounded = evaluate(request, sessions, side.policies)
            if not bounded.allowed:
                because = (
                    "with an explicit deny in a session policy"
                    if bounded.explicit_deny
                    else f"because no session policy allows the {action} action"
                )
                return Decision(
                    allowed=False,
                    explicit_deny=bounded.explicit_deny,
                    message=denial_message(principal, action, resource_arn, because=because),
                )
        return Decision(allowed=True)


def _denied(
    principal: Principal, action: str, resource_arn: str, result: PolicyDecision
) -> Decision:
    if action.partition(":")[0].lower() in _TERSE_DENIALS:
        message = denial_message(principal, action, resource_arn)
    else:
        message = result.message(principal.arn, action, resource_arn)
    return Decision(allowed=False, explicit_deny=result.explicit_deny, message=message)


def enforcing(authorizer: Authorizer) -> Enforce:
    """The fronts' check of a call: AccessDenied unless `authorizer` allows it."""

    async def authorize(
        principal: Principal,
        action: str,
        resource: str,
        context: Mapping[str, Any],
        *,
        record: RequestRecord | None = None,
    ) -> None:
        decision = await authorizer.authorize(principal, action, resource, context, record=record)
        if not decision.allowed:
            raise AccessDenied(decision.message)

    return authorize
