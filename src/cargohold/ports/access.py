"""Events of one kind, oldest first (by time, then by id); `errors_only`: those with an
error code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cargohold.domain.identity import (
    AccessKey,
    AccessKeyStatus,
    Attached,
    Entity,
    Group,
    Identity,
    ManagedPolicy,
    PolicyVersion,
    PrincipalKind,
    Role,
    Session,
)
from cargohold.domain.records import RepositoryFacts, StoredEvent, StoredPolicy


class Identities(Protocol):
    """Principals (users, roles) and their access keys."""

    async def insert_principal(self, identity: Identity) -> bool:
        """Insert unless the name (in any case), the id or the ARN is taken; whether it was."""
        ...

    async def principal_by_name(
        self, account_id: str, kind: PrincipalKind, name: str, *, for_update: bool = False
    ) -> Identity | None:
        """The principal, locked against concurrent key changes when `for_update`."""
        ...

    async def principal(self, principal_id: str) -> Identity | None: ...

    async def list_principals(self, account_id: str, kind: PrincipalKind) -> list[Identity]: ...

    async def delete_principal(self, principal_id: str) -> bool:
        """Deletes the principal and, by cascade, its access keys."""
        ...

    async def insert_access_key(
        self,
        *,
        key_id: str,
        principal_id: str,
        secret_ciphertext: bytes,
        status: AccessKeyStatus,
        now: float,
    ) -> None: ...

    async def access_key(self, key_id: str) -> AccessKey | None: ...

    async def access_key_credential(self, key_id: str) -> tuple[AccessKey, Identity, bytes] | None:
        """The key, its principal and its secret's ciphertext, in one query."""
        ...

    async def access_keys_of(self, principal_id: str) -> list[AccessKey]: ...

    async def access_keys_in(self, account_id: str) -> list[AccessKey]: ...

    async def access_key_secret(self, key_id: str) -> bytes | None: ...

    async def set_access_key_status(self, key_id: str, status: AccessKeyStatus) -> bool: ...

    async def delete_access_key(self, key_id: str) -> bool: ...

    async def record_key_use(self, key_id: str, now: float, service: str, region: str) -> None: ...


class Iam(Protocol):
    """IAM roles, groups and group membership."""

    async def insert_role_details(
        self, principal_id: str, trust_policy: str, description: str | None, max_session: int
    ) -> None:
        """The role's own columns, for a `principals` row of kind role inserted just before."""
        ...

    async def role_by_name(
        self, account_id: str, name: str, *, for_update: bool = False
    ) -> Role | None: ...

    async def role(self, principal_id: str) -> Role | None: ...

    async def role_by_arn(self, arn: str) -> Role | None: ...

    async def list_roles(self, account_id: str) -> list[Role]: ...

    async def update_role(self, principal_id: str, **values: Any) -> None: ...

    async def principal_exists(self, arn: str) -> bool: ...

    async def insert_group(self, group: Group) -> bool:
        """Insert unless the name (in any case) or the ARN is taken; whether it was."""
        ...

    async def group_by_name(
        self, account_id: str, name: str, *, for_update: bool = False
    ) -> Group | None: ...

    async def list_groups(self, account_id: str) -> list[Group]: ...

    async def delete_group(self, group_id: str) -> None: ...

    async def add_member(self, group_id: str, principal_id: str, now: float) -> None: ...

    async def remove_member(self, group_id: str, principal_id: str) -> bool: ...

    async def members(self, group_id: str) -> list[Identity]: ...

    async def groups_of(self, principal_id: str) -> list[Group]: ...

    async def dependents(self, entity: Entity) -> dict[str, int]:
        """What stops an entity's deletion: counts of its access keys, inline policies,
        attached policies, groups (a user's) and members (a group's)."""
        ...


class IamPolicies(Protocol):
    """IAM inline and managed policies, their versions and attachments."""

    async def put_inline(self, entity: Entity, name: str, document: str, now: float) -> None:
        """Create or replace the entity's inline policy `name`."""
        ...

    async def inline_policies(self, entity: Entity) -> dict[str, str]:
        """The entity's inline policies, name to document, by name."""
        ...

    async def delete_inline(self, entity: Entity, name: str) -> bool: ...

    async def insert_policy(self, policy: ManagedPolicy, document: str) -> bool:
        """Insert the policy with `document` as its version v1 (its default); False when the
        name (in any case) or the ARN is taken."""
        ...

    async def policy_by_arn(
        self, arn: str, *, for_update: bool = False
    ) -> ManagedPolicy | None: ...

    async def list_policies(
        self, account_id: str, *, local: bool, aws: bool
    ) -> list[ManagedPolicy]:
        """The account's own policies (`local`) and AWS's (`aws`), by name."""
        ...

    async def delete_policy(self, policy_id: str) -> None: ...

    async def versions(self, policy_id: str, default_version: str) -> list[PolicyVersion]:
        """The policy's versions, newest first."""
        ...

    async def version_document(
        self, policy_id: str, version_id: str
    ) -> tuple[str, float] | None: ...

    async def add_version(
        self, policy_id: str, document: str, *, set_default: bool, now: float
    ) -> str:
        """Add the next version (`v<n>`, never reused); the new version id."""
        ...

    async def delete_version(self, policy_id: str, version_id: str) -> bool: ...

    async def set_default_version(self, policy_id: str, version_id: str, now: float) -> None: ...

    async def replace_aws_policy(self, policy: ManagedPolicy, document: str) -> None:
        """Bring a stored AWS managed policy to `policy`'s default version and `document`."""
        ...

    async def attach(self, policy_id: str, entity: Entity, now: float) -> None: ...

    async def detach(self, policy_id: str, entity: Entity) -> bool: ...

    async def attached_policies(self, entity: Entity) -> list[ManagedPolicy]: ...

    async def attached_to(self, policy_id: str) -> Attached: ...

    async def identity_documents(self, principal_id: str) -> list[str]:
        """Every identity-based policy document that applies to a user or role: its inline
        policies, the default versions of its managed policies, and those of its groups."""
        ...


class Sessions(Protocol):
    """STS sessions: assumed roles and session tokens."""

    async def insert_session(
        self,
        session: Session,
        *,
        secret_ciphertext: bytes,
        token_ciphertext: bytes,
        session_policy: str | None,
    ) -> None: ...

    async def session(self, session_id: str) -> Session | None: ...

    async def session_credential(
        self, session_id: str
    ) -> tuple[Session, bytes, bytes, str | None] | None:
        """The session, its secret's and token's ciphertexts, and its session policy."""
        ...

    async def delete_expired_sessions(self, before: float) -> int: ...


class ResourcePolicyStore(Protocol):
    """Repository and registry policies, and what authorization reads beside them."""

    async def repository_policy(self, repository_id: int) -> StoredPolicy | None: ...

    async def put_repository_policy(self, repository_id: int, text: str, now: float) -> None: ...

    async def delete_repository_policy(self, repository_id: int) -> bool: ...

    async def repository_facts(self, registry_id: str, name: str) -> RepositoryFacts | None:
        """The policy and tags of a repository; None when it does not exist."""
        ...

    async def registry_policy(self, registry_id: str) -> StoredPolicy | None: ...

    async def put_registry_policy(self, registry_id: str, text: str, now: float) -> None: ...

    async def delete_registry_policy(self, registry_id: str) -> bool: ...

    async def registry_facts(self, registry_id: str, setting: str) -> tuple[str | None, str | None]:
        """The registry's policy and the value of one account setting (None: not set)."""
        ...


class Events(Protocol):
    """The audit log's events."""

    async def insert_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Many events in one statement (an executemany): what the batched audit log writes.
        Each row names the columns: kind, event_time, account_id, event_source, event_name,
        principal_arn, error_code, document."""
        ...

    async def list_events(
        self,
        kind: str,
        *,
        since: float | None = None,
        until: float | None = None,
        principal_arn: str | None = None,
        account_id: str | None = None,
        after_id: int | None = None,
        errors_only: bool = False,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[StoredEvent]:
        """Events of one kind, oldest first (by time, then by id); `errors_only`: those with an
        error code. With `newest`, the `limit` newest of them (still oldest first)."""
        ...
