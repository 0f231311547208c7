"""Authorization: the one decision every front asks for, `authorize(principal, action,
resource_arn, context)`.

Until the IAM issue brings policies, the rule is ECR's default for a single account: a principal
of the account that owns the resource may do anything to it; nobody else may do anything. The IAM
issue replaces the body of `Authorizer.authorize` with policy evaluation (identity policies ∪
resource policy ∪ registry policy, a pure function in `domain/`); its callers, the `Decision`
they get back and the denial messages stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cargohold.domain.principal import Principal

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


def resource_account(resource_arn: str) -> str | None:
    """The account id field of an ARN (`arn:partition:service:region:account:resource`)."""
    parts = resource_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[4] or None


def denial_message(
    principal: Principal, action: str, resource_arn: str, *, because: str = ""
) -> str:
    """`User: arn:… is not authorized to perform: ecr:X on resource: arn:… because …`."""
    message = (
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource_arn}"
    )
    return f"{message} because {because}" if because else message


def principal_context(principal: Principal, now: float) -> dict[str, str]:
    """The global condition keys that follow from the caller and the time alone."""
    context = {
        "aws:PrincipalArn": principal.arn,
        "aws:PrincipalAccount": principal.account_id,
        "aws:userid": principal.principal_id,
        "aws:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
    }
    if principal.username is not None:
        context["aws:username"] = principal.username
    return context


class Authorizer:
    """Decides whether a principal may perform an action on a resource. Records nothing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    async def authorize(
        self,
        principal: Principal,
        action: str,
        resource_arn: str,
        context: Context | None = None,
    ) -> Decision:
        # Policies will see `{**principal_context(principal, now), **context}`; today's rule
        # needs neither.
        # "*" is what account-level actions (GetAuthorizationToken, DescribeRegistry) act on:
        # the caller's own registry.
        owner = principal.account_id if resource_arn == "*" else resource_account(resource_arn)
        if owner is not None and owner == principal.account_id:
            return Decision(allowed=True)
        # AWS managed policies (`arn:aws:iam::aws:policy/…`) belong to no account and are
        # readable by every account's principals.
        if owner == "aws" and action.lower().startswith(("iam:get", "iam:list")):
            return Decision(allowed=True)
        return Decision(
            allowed=False,
            message=denial_message(
                principal,
                action,
                resource_arn,
                because=f"no resource-based policy allows the {action} action",
            ),
        )
