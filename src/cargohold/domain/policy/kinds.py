"""The kinds of policy document, and what each may hold and weigh.

Which elements a document must or may not have depends on where it is attached: identity-based
policies (IAM managed and inline) name no principal and must name resources; a role's trust
policy and an ECR repository policy must name principals and may not name resources (they are
about the resource they are attached to); an ECR registry policy names both.

Sizes, as IAM counts them, leave out white space: a managed policy holds 6,144 characters, a trust
policy 2,048; inline policies count together per entity (a user's 2,048, a group's 5,120, a
role's 10,240). ECR takes repository and registry policies of up to 10,240 characters.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final, Literal

from cargohold.domain.policy.errors import INVALID_PARAMETER, LIMIT_EXCEEDED, PolicyError


class PolicyKind(enum.Enum):
    MANAGED = "managed"  # IAM CreatePolicy, CreatePolicyVersion
    INLINE = "inline"  # IAM PutUserPolicy, PutGroupPolicy, PutRolePolicy
    TRUST = "trust"  # IAM CreateRole, UpdateAssumeRolePolicy
    REPOSITORY = "repository"  # ECR SetRepositoryPolicy
    REGISTRY = "registry"  # ECR PutRegistryPolicy

    @property
    def identity_based(self) -> bool:
        return self in (PolicyKind.MANAGED, PolicyKind.INLINE)

    @property
    def needs_resources(self) -> bool:
        return self in (PolicyKind.MANAGED, PolicyKind.INLINE, PolicyKind.REGISTRY)

    @property
    def ecr(self) -> bool:
        return self in (PolicyKind.REPOSITORY, PolicyKind.REGISTRY)


MANAGED_POLICY_SIZE: Final = 6144
TRUST_POLICY_SIZE: Final = 2048
ECR_POLICY_SIZE: Final = 10240
InlineOwner = Literal["user", "group", "role"]
INLINE_POLICY_SIZE: Final[dict[InlineOwner, int]] = {"user": 2048, "group": 5120, "role": 10240}


def policy_size(text: str) -> int:
    """A document's size as IAM counts it: its characters other than white space."""
    return sum(1 for char in text if not char.isspace())


def check_size(text: str, kind: PolicyKind) -> None:
    """Refuse a single document over the limit of its kind (inline ones: `check_inline_size`)."""
    if kind is PolicyKind.MANAGED and policy_size(text) > MANAGED_POLICY_SIZE:
        raise PolicyError(
            LIMIT_EXCEEDED, f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}"
        )
    if kind is PolicyKind.TRUST and policy_size(text) > TRUST_POLICY_SIZE:
        raise PolicyError(
            LIMIT_EXCEEDED, f"Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}"
        )
    if kind.ecr and len(text) > ECR_POLICY_SIZE:
        raise PolicyError(
            INVALID_PARAMETER,
            f"Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Member must have "
            f"length less than or equal to {ECR_POLICY_SIZE}'",
        )


def check_inline_size(documents: Iterable[str], owner: InlineOwner, name: str) -> None:
    """Refuse a set of inline policies of one user, group or role over their joint limit."""
    limit = INLINE_POLICY_SIZE[owner]
    if sum(policy_size(text) for text in documents) > limit:
        raise PolicyError(
            LIMIT_EXCEEDED, f"Maximum policy size of {limit} bytes exceeded for {owner} {name}"
        )
