"""Managed policies: the account's own (create, versions, default version, delete) and AWS's
(`cargohold.domain.managed_policies`, stored at start-up and never changed by a caller), and
their attachment to users, groups and roles.

IAM's rules: names are unique in an account regardless of case; a policy keeps at most five
versions and a version id is never reused; the default version cannot be deleted; a policy
that is attached, or has versions besides its default, cannot be deleted; an entity holds at
most ten managed policies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cargohold.domain.identity import (
    MAX_MANAGED_POLICIES_PER_ENTITY,
    MAX_POLICY_VERSIONS,
    POLICY,
    UNIQUE_ID_PREFIXES,
    UNIQUE_ID_RANDOM_LENGTH,
    Attached,
    DeleteConflict,
    EntityAlreadyExists,
    EntityKind,
    InvalidParameter,
    LimitExceeded,
    ManagedPolicy,
    NoSuchEntity,
    PolicyVersion,
    Unmodifiable,
    policy_arn,
    validate_path,
    validate_policy_name,
)
from cargohold.domain.managed_policies import AWS_MANAGED_POLICIES, AwsManagedPolicy
from cargohold.domain.policy import PolicyKind
from cargohold.ports import Metadata, Transaction
from cargohold.service.credentials import random_id
from cargohold.service.iam import IamService, parse_document

log = logging.getLogger(__name__)

_QUOTA_NAMES: dict[EntityKind, str] = {
    "user": "PoliciesPerUser",
    "group": "PoliciesPerGroup",
    "role": "PoliciesPerRole",
}


def _not_found(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"Policy {arn} was not found.")


def _not_attachable(arn: str) -> NoSuchEntity:
    return NoSuchEntity(f"Policy {arn} does not exist or is not attachable.")


def _stored(policy: AwsManagedPolicy) -> ManagedPolicy:
    return ManagedPolicy(
        id=policy.id,
        account_id=None,
        name=policy.name,
        path=policy.path,
        arn=policy.arn,
        default_version=policy.version_id,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
        description=policy.description,
    )


class ManagedPolicyService:
    """Managed policies as one account sees them: its own and AWS's."""

    def __init__(
        self,
        store: Metadata,
        iam: IamService,
        clock: Callable[[], float],
        *,
        account_id: str,
    ) -> None:
        self._store = store
        self._iam = iam
        self._clock = clock
        self.account_id = account_id

    def for_account(self, account_id: str) -> ManagedPolicyService:
        """The same service for another account on this server (the caller's, in IAM calls)."""
        if account_id == self.account_id:
            return self
        return ManagedPolicyService(
            self._store, self._iam.for_account(account_id), self._clock, account_id=account_id
        )

    async def ensure_aws_managed_policies(self) -> None:
        """Store AWS's managed policies, or bring stored ones to the versions this release
        knows. Idempotent, and safe on many nodes at once."""
        async with self._store.write() as tx:
            for known in AWS_MANAGED_POLICIES:
                stored = await tx.iam_policies.policy_by_arn(known.arn, for_update=True)
                if stored is None:
                    await tx.iam_policies.insert_policy(_stored(known), known.document_text)
                elif stored.default_version != known.version_id:
                    await tx.iam_policies.replace_aws_policy(_stored(known), known.document_text)

    # -- policies ---------------------------------------------------------------------------

    async def create_policy(
        self, name: str, document: str, *, path: str = "/", description: str | None = None
    ) -> ManagedPolicy:
        validate_policy_name(name)
        validate_path(path)
        parse_document(document, PolicyKind.MANAGED)
        now = self._clock()
        policy = ManagedPolicy(
            id=random_id(UNIQUE_ID_PREFIXES[POLICY], UNIQUE_ID_RANDOM_LENGTH),
            account_id=self.account_id,
            name=name,
            path=path,
            arn=policy_arn(self.account_id, name, path),
            default_version="v1",
            created_at=now,
            updated_at=now,
            description=description,
        )
        async with self._store.write() as tx:
            if not await tx.iam_policies.insert_policy(policy, document):
                raise EntityAlreadyExists(
                    f"A policy called {name} already exists. Duplicate names are not allowed."
                )
        log.info("created policy %s", policy.arn)
        return policy

    async def get_policy(self, arn: str) -> ManagedPolicy:
        async with self._store.read() as tx:
            return await self._visible(tx, arn)

    async def _visible(
        self, tx: Transaction, arn: str, *, for_update: bool = False
    ) -> ManagedPolicy:
        """The policy, if this account may see it (its own, or AWS's); else NoSuchEntity."""
        policy = await tx.iam_policies.policy_by_arn(arn, for_update=for_update)
        if policy is None or policy.account_id not in (None, self.account_id):
            raise _not_found(arn)
        return policy

    async def _own(self, tx: Transaction, arn: str) -> ManagedPolicy:
        """The account's own policy, locked for a change; AWS's cannot be changed."""
        policy = await self._visible(tx, arn, for_update=True)
        if policy.aws_managed:
            raise Unmodifiable(f"Cannot modify the AWS managed policy {arn}.")
        return policy

    async def list_policies(
        self, *, scope: str = "All", only_attached: bool = False, path_prefix: str = "/"
    ) -> list[ManagedPolicy]:
        """ListPolicies: `scope` All, AWS or Local."""
        async with self._store.read() as tx:
            found = await tx.iam_policies.list_policies(
                self.account_id, local=scope in ("All", "Local"), aws=scope in ("All", "AWS")
            )
        return [
            policy
            for policy in found
            if policy.path.startswith(path_prefix)
            and (policy.attachment_count or not only_attached)
        ]

    async def delete_policy(self, arn: str) -> None:
        async with self._store.write() as tx:
            policy = await self._own(tx, arn)
            if policy.attachment_count:
                raise DeleteConflict("Cannot delete a policy attached to entities.")
            if len(await tx.iam_policies.versions(policy.id, policy.default_version)) > 1:
                raise DeleteConflict(
                    "This policy has more than one version. Before you delete a policy, you "
                    "must delete the policy's versions. The default version is deleted with "
                    "the policy."
                )
            await tx.iam_policies.delete_policy(policy.id)
        log.info("deleted policy %s", arn)

    # -- versions ---------------------------------------------------------------------------

    async def create_version(self, arn: str, document: str, *, set_default: bool) -> PolicyVersion:
        parse_document(document, PolicyKind.MANAGED)
        now = self._clock()
        async with self._store.write() as tx:
            policy = await self._own(tx, arn)
            if (
                len(await tx.iam_policies.versions(policy.id, policy.default_version))
                >= MAX_POLICY_VERSIONS
            ):
                raise LimitExceeded(
                    f"A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before "
                    "you create a new version, you must delete an existing version."
                )
            version_id = await tx.iam_policies.add_version(
                policy.id, document, set_default=set_default, now=now
            )
        return PolicyVersion(policy.id, version_id, document, set_default, now)

    async def get_version(self, arn: str, version_id: str) -> PolicyVersion:
        async with self._store.read() as tx:
            policy = await self._visible(tx, arn)
            found = await tx.iam_policies.version_document(policy.id, version_id)
        if found is None:
            raise NoSuchEntity(
                f"Policy {arn} version {version_id} does not exist or is not attachable."
            )
        document, created_at = found
        return PolicyVersion(
            policy.id, version_id, document, version_id == policy.default_version, created_at
        )

    async def list_versions(self, arn: str) -> list[PolicyVersion]:
        async with self._store.read() as tx:
            policy = await self._visible(tx, arn)
            return await tx.iam_policies.versions(policy.id, policy.default_version)

    async def delete_version(self, arn: str, version_id: str) -> None:
        async with self._store.write() as tx:
            policy = await self._own(tx, arn)
            if version_id == policy.default_version:
                raise DeleteConflict("Cannot delete the default version of a policy.")
            if not await tx.iam_policies.delete_version(policy.id, version_id):
                raise NoSuchEntity(
                    f"Policy {arn} version {version_id} does not exist or is not attachable."
                )

    async def set_default_version(self, arn: str, version_id: str) -> None:
        async with self._store.write() as tx:
            policy = await self._own(tx, arn)
            if await tx.iam_policies.version_document(policy.id, version_id) is None:
                raise NoSuchEntity(
                    f"Policy {arn} version {version_id} does not exist or is not attachable."
                )
            await tx.iam_policies.set_default_version(policy.id, version_id, self._clock())

    # -- attachments ------------------------------------------------------------------------

    async def attach(self, kind: EntityKind, entity_name: str, arn: str) -> None:
        """Attach a managed policy to a user, group or role (again: a no-op)."""
        async with self._store.write() as tx:
            entity = await self._iam.entity(tx, kind, entity_name, for_update=True)
            policy = await tx.iam_policies.policy_by_arn(arn)
            if policy is None or policy.account_id not in (None, self.account_id):
                raise _not_attachable(arn)
            attached = await tx.iam_policies.attached_policies(entity)
            if policy.arn not in {p.arn for p in attached}:
                if len(attached) >= MAX_MANAGED_POLICIES_PER_ENTITY:
                    raise LimitExceeded(
                        f"Cannot exceed quota for {_QUOTA_NAMES[kind]}: "
                        f"{MAX_MANAGED_POLICIES_PER_ENTITY}"
                    )
                await tx.iam_policies.attach(policy.id, entity, self._clock())
        log.info("attached %s to %s %s", arn, kind, entity_name)

    async def detach(self, kind: EntityKind, entity_name: str, arn: str) -> None:
        async with self._store.write() as tx:
            entity = await self._iam.entity(tx, kind, entity_name, for_update=True)
            policy = await tx.iam_policies.policy_by_arn(arn)
            if policy is None or not await tx.iam_policies.detach(policy.id, entity):
                raise NoSuchEntity(f"Policy {arn} was not found.")
        log.info("detached %s from %s %s", arn, kind, entity_name)

    async def attached(
        self, kind: EntityKind, entity_name: str, *, path_prefix: str = "/"
    ) -> list[ManagedPolicy]:
        async with self._store.read() as tx:
            entity = await self._iam.entity(tx, kind, entity_name)
            found = await tx.iam_policies.attached_policies(entity)
        return [policy for policy in found if policy.path.startswith(path_prefix)]

    async def entities_for(self, arn: str) -> Attached:
        async with self._store.read() as tx:
            policy = await self._visible(tx, arn)
            return await tx.iam_policies.attached_to(policy.id)


def validate_policy_arn(arn: str) -> str:
    """IAM's InvalidInput for a policy ARN that is not one (`ARN x is not valid.`)."""
    parts = arn.split(":", 5)
    if (
        len(parts) != 6
        or parts[0] != "arn"
        or parts[2] != "iam"
        or not parts[5].startswith("policy/")
    ):
        raise InvalidParameter(f"ARN {arn} is not valid.")
    return arn
