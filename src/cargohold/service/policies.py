"""Resource-based policies: ECR's repository and registry policies, and what every resource
contributes to an authorization decision.

- `PolicyService`: SetRepositoryPolicy (validated as ECR validates it, the principals it names
  checked, and refused when it would lock the caller out unless forced), Get/Delete
  RepositoryPolicy, Put/Get/DeleteRegistryPolicy.
- `ResourcePolicies`: the `ResourcePolicySource` of the authorizer. For an ECR repository, its
  account, its repository policy, its registry's policy and its tags; for `repository/*`, the
  registry policy; for a role and `sts:AssumeRole`, the role's trust policy.

The registry policy speaks for every ECR action under the account setting
`REGISTRY_POLICY_SCOPE` V2 (the default); under V1 only for ReplicateImage,
BatchImportUpstreamImage and CreateRepository, as ECR documents.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from cargohold.domain.errors import RegistryPolicyNotFound, RepositoryPolicyNotFound
from cargohold.domain.policy import (
    INVALID_PARAMETER,
    Policy,
    PolicyError,
    PolicyKind,
    parse_policy,
    resource_tag_context,
)
from cargohold.domain.principal import Principal, repository_arn
from cargohold.ports import Metadata, Transaction
from cargohold.service.authz import Decision, ResourceSide, resource_account, resource_owner
from cargohold.service.content import repository_not_found
from cargohold.service.readcache import ReadCache

SET_REPOSITORY_POLICY: Final = "ecr:SetRepositoryPolicy"
POLICY_SCOPE_SETTING: Final = "REGISTRY_POLICY_SCOPE"
#: What a registry policy governs under REGISTRY_POLICY_SCOPE V1.
V1_REGISTRY_ACTIONS: Final = frozenset(
    {"ecr:replicateimage", "ecr:batchimportupstreamimage", "ecr:createrepository"}
)

_ECR_ARN = re.compile(
    r"arn:aws[-a-z]*:ecr:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):repository/(?P<name>.+)"
)
_ROLE_ARN = re.compile(r"arn:aws[-a-z]*:iam::\d{12}:role/.+")

PRINCIPAL_NOT_FOUND: Final = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Principal not found'"
)
WOULD_LOCK_OUT: Final = (
    "The repository policy would prevent you from setting another policy in the future "
    "(ecr:SetRepositoryPolicy would be denied); set force to apply it anyway"
)


@dataclass(frozen=True, slots=True)
class RepositoryPolicy:
    registry_id: str
    repository_name: str
    text: str


@dataclass(frozen=True, slots=True)
class RegistryPolicy:
    registry_id: str
    text: str


class AccessSimulator(Protocol):
    """What SetRepositoryPolicy's lock-out check asks of the authorizer."""

    async def simulate(
        self,
        principal: Principal,
        action: str,
        resource_arn: str,
        context: Mapping[str, object] | None = None,
        *,
        resource_policies: Callable[[ResourceSide], tuple[Policy, ...]],
    ) -> Decision: ...


def repository_policy_missing(name: str, registry_id: str) -> RepositoryPolicyNotFound:
    return RepositoryPolicyNotFound(
        f"Repository policy does not exist for the repository with name '{name}' in the "
        f"registry with id '{registry_id}'"
    )


def registry_policy_missing(registry_id: str) -> RegistryPolicyNotFound:
    return RegistryPolicyNotFound(
        f"Registry policy does not exist in the registry with id '{registry_id}'"
    )


async def check_principals(tx: Transaction, policy: Policy) -> None:
    """ECR refuses a policy naming a user or role that does not exist ("Principal not found").
    Only accounts this server holds can be checked; others are taken on trust."""
    for arn in policy.principal_arns():
        if ":user/" not in arn and ":role/" not in arn:
            continue
        account = resource_account(arn)
        if account is None or not await tx.registries.registry_exists(account):
            continue
        if not await tx.iam.principal_exists(arn):
            raise PolicyError(INVALID_PARAMETER, PRINCIPAL_NOT_FOUND)


class PolicyService:
    """Repository and registry policies, each in the registry (account) it belongs to."""

    def __init__(
        self,
        store: Metadata,
        clock: Callable[[], float],
        *,
        region: str,
        simulator: AccessSimulator | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._region = region
        self._simulator = simulator

    # -- repository policies ----------------------------------------------------------------

    async def set_repository_policy(
        self,
        registry_id: str,
        name: str,
        text: str,
        *,
        force: bool = False,
        caller: Principal | None = None,
        context: Mapping[str, object] | None = None,
    ) -> RepositoryPolicy:
        """Raises PolicyError (InvalidParameterException) for a policy ECR would refuse or one
        that would deny `caller` ecr:SetRepositoryPolicy afterwards (unless `force`), and
        NameUnknown for a missing repository."""
        policy = parse_policy(text, PolicyKind.REPOSITORY)
        async with self._store.read() as tx:
            await self._repository_id(tx, registry_id, name)
            await check_principals(tx, policy)
        if not force and caller is not None and self._simulator is not None:
            await self._refuse_lock_out(registry_id, name, policy, caller, context)
        async with self._store.write() as tx:
            repository_id = await self._repository_id(tx, registry_id, name)
            await tx.policies.put_repository_policy(repository_id, text, self._clock())
        return RepositoryPolicy(registry_id, name, text)

    async def _refuse_lock_out(
        self,
        registry_id: str,
        name: str,
        policy: Policy,
        caller: Principal,
        context: Mapping[str, object] | None,
    ) -> None:
        assert self._simulator is not None

        def replaced(side: ResourceSide) -> tuple[Policy, ...]:
            others = tuple(p for p in side.policies if p.kind is not PolicyKind.REPOSITORY)
            return (policy, *others)

        decision = await self._simulator.simulate(
            caller,
            SET_REPOSITORY_POLICY,
            repository_arn(self._region, registry_id, name),
            context,
            resource_policies=replaced,
        )
        if not decision.allowed:
            raise PolicyError(INVALID_PARAMETER, WOULD_LOCK_OUT, reason=decision.message)

    async def get_repository_policy(self, registry_id: str, name: str) -> RepositoryPolicy:
        async with self._store.read() as tx:
            repository_id = await self._repository_id(tx, registry_id, name)
            stored = await tx.policies.repository_policy(repository_id)
        if stored is None:
            raise repository_policy_missing(name, registry_id)
        return RepositoryPolicy(registry_id, name, stored.text)

    async def delete_repository_policy(self, registry_id: str, name: str) -> RepositoryPolicy:
        """The policy deleted; RepositoryPolicyNotFound when there was none."""
        async with self._store.write() as tx:
            repository_id = await self._repository_id(tx, registry_id, name)
            stored = await tx.policies.repository_policy(repository_id)
            if stored is None or not await tx.policies.delete_repository_policy(repository_id):
                raise repository_policy_missing(name, registry_id)
        return RepositoryPolicy(registry_id, name, stored.text)

    @staticmethod
    async def _repository_id(tx: Transaction, registry_id: str, name: str) -> int:
        repository = await tx.repositories.get_repository(registry_id, name)
        if repository is None:
            raise repository_not_found(name, registry_id)
        return repository.id

    # -- registry policies ------------------------------------------------------------------

    async def put_registry_policy(self, registry_id: str, text: str) -> RegistryPolicy:
        policy = parse_policy(text, PolicyKind.REGISTRY)
        async with self._store.write() as tx:
            await tx.registries.ensure_registry(registry_id, self._region, self._clock())
            await check_principals(tx, policy)
            await tx.policies.put_registry_policy(registry_id, text, self._clock())
        return RegistryPolicy(registry_id, text)

    async def get_registry_policy(self, registry_id: str) -> RegistryPolicy:
        async with self._store.read() as tx:
            stored = await tx.policies.registry_policy(registry_id)
        if stored is None:
            raise registry_policy_missing(registry_id)
        return RegistryPolicy(registry_id, stored.text)

    async def delete_registry_policy(self, registry_id: str) -> RegistryPolicy:
        async with self._store.write() as tx:
            stored = await tx.policies.registry_policy(registry_id)
            if stored is None or not await tx.policies.delete_registry_policy(registry_id):
                raise registry_policy_missing(registry_id)
        return RegistryPolicy(registry_id, stored.text)


class ResourcePolicies:
    """The `ResourcePolicySource` of `cargohold.service.authz.Authorizer`."""

    def __init__(self, store: Metadata, *, cache_size: int = 1024) -> None:
        self._store = store
        # Stored documents were validated on the way in; parsing one again is pure, so the
        # parsed form of each text is kept.
        self._parse = functools.lru_cache(maxsize=cache_size)(parse_policy)
        self._sides: ReadCache[tuple[str, str], ResourceSide] = ReadCache(
            store, name="resource-policies"
        )

    async def resource_side(self, resource_arn: str, action: str) -> ResourceSide:
        key = (resource_arn, action.lower())
        return await self._sides.fetch(key, lambda: self._read_side(resource_arn, action))

    async def _read_side(self, resource_arn: str, action: str) -> ResourceSide:
        ecr = _ECR_ARN.fullmatch(resource_arn)
        if ecr is not None:
            return await self._repository_side(ecr["account"], ecr["name"], action)
        if action.lower() == "sts:assumerole" and _ROLE_ARN.fullmatch(resource_arn):
            return await self._role_side(resource_arn)
        return ResourceSide(account_id=resource_owner(resource_arn, action))

    async def _repository_side(self, account: str, name: str, action: str) -> ResourceSide:
        policies: list[Policy] = []
        tags: dict[str, str] = {}
        async with self._store.read() as tx:
            if "*" not in name and "?" not in name:
                facts = await tx.policies.repository_facts(account, name)
                if facts is not None:
                    tags = facts.tags
                    if facts.policy is not None:
                        policies.append(self._parse(facts.policy, PolicyKind.REPOSITORY))
            registry_text, scope = await tx.policies.registry_facts(account, POLICY_SCOPE_SETTING)
        if registry_text is not None and (
            (scope or "V2") == "V2" or action.lower() in V1_REGISTRY_ACTIONS
        ):
            policies.append(self._parse(registry_text, PolicyKind.REGISTRY))
        return ResourceSide(account, tuple(policies), resource_tag_context(tags))

    async def _role_side(self, role_arn: str) -> ResourceSide:
        async with self._store.read() as tx:
            role = await tx.iam.role_by_arn(role_arn)
        account = resource_account(role_arn)
        if role is None:
            return ResourceSide(account_id=account)
        return ResourceSide(account, (self._parse(role.trust_policy, PolicyKind.TRUST),))
