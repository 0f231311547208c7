"""IAM beyond users and keys: roles with trust policies, groups and their members, inline
policies of users, groups and roles, and what decides for a principal (`identity_policies`).

Managed policies, their versions and attachments are in `cargohold.service.managed_policies`;
users and access keys in `cargohold.service.identity_admin`. Every policy document that comes in is
validated at one place, `parse_document`, with the policy engine's parser, so a document IAM
would refuse is refused here with the same code and message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cargohold.domain.identity import (
    DEFAULT_ROLE_SESSION,
    GROUP,
    MAX_GROUPS_PER_USER,
    ROLE,
    UNIQUE_ID_PREFIXES,
    UNIQUE_ID_RANDOM_LENGTH,
    USER,
    Entity,
    EntityAlreadyExists,
    EntityKind,
    Group,
    Identity,
    LimitExceeded,
    NoSuchEntity,
    Role,
    group_arn,
    role_arn,
    validate_name,
    validate_path,
    validate_policy_name,
)
from cargohold.domain.policy import (
    MALFORMED_POLICY_DOCUMENT,
    Policy,
    PolicyError,
    PolicyKind,
    check_inline_size,
    parse_policy,
)
from cargohold.domain.principal import Principal
from cargohold.ports import Metadata, Transaction
from cargohold.service.credentials import random_id, refuse_deletion
from cargohold.service.identity_policies import ADMINISTRATOR_ACCESS, is_administrator

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_ENTITY_NOUNS: dict[EntityKind, str] = {USER: "user", ROLE: "role", GROUP: "group"}


def parse_document(text: str, kind: PolicyKind) -> Policy:
    """The one place IAM and STS validate a policy document they are handed.

    Raises PolicyError with IAM's code (MalformedPolicyDocument, LimitExceeded) and message.
    """
    return parse_policy(text, kind)


def no_such(kind: EntityKind, name: str) -> NoSuchEntity:
    return NoSuchEntity(f"The {_ENTITY_NOUNS[kind]} with name {name} cannot be found.")


@dataclass(frozen=True, slots=True)
class GroupDetail:
    group: Group
    users: list[Identity]


class IamService:
    """Roles, groups and inline policies of one account."""

    def __init__(self, store: Metadata, clock: Callable[[], float], *, account_id: str) -> None:
        self._store = store
        self._clock = clock
        self.account_id = account_id

    def for_account(self, account_id: str) -> IamService:
        """The same service for another account on this server (the caller's, in IAM calls)."""
        if account_id == self.account_id:
            return self
        return IamService(self._store, self._clock, account_id=account_id)

    # -- entities ---------------------------------------------------------------------------

    async def entity(
        self, tx: Transaction, kind: EntityKind, name: str, *, for_update: bool = False
    ) -> Entity:
        """The user, role or group of this account called `name` (locked against concurrent
        deletion when `for_update`); NoSuchEntity otherwise."""
        if kind == GROUP:
            group = await tx.iam.group_by_name(self.account_id, name, for_update=for_update)
            if group is None:
                raise no_such(kind, name)
            return Entity(kind, group.id)
        found = await tx.identities.principal_by_name(
            self.account_id, kind, name, for_update=for_update
        )
        if found is None:
            raise no_such(kind, name)
        return Entity(kind, found.id)

    async def entity_arn(self, kind: EntityKind, name: str) -> str | None:
        """The ARN of the user, role or group called `name` (with its path), if it exists."""
        async with self._store.read() as tx:
            if kind == GROUP:
                group = await tx.iam.group_by_name(self.account_id, name)
                return None if group is None else group.arn
            found = await tx.identities.principal_by_name(self.account_id, kind, name)
            return None if found is None else found.arn

    # -- roles ------------------------------------------------------------------------------

    async def create_role(
        self,
        name: str,
        trust_policy: str,
        *,
        path: str = "/",
        description: str | None = None,
        max_session_duration: int | None = None,
    ) -> Role:
        """Raises EntityAlreadyExists, and PolicyError for a trust policy IAM would refuse
        (including one naming a user or role that does not exist)."""
        validate_name(name, kind="role")
        validate_path(path)
        trust = parse_document(trust_policy, PolicyKind.TRUST)
        now = self._clock()
        role = Role(
            id=random_id(UNIQUE_ID_PREFIXES[ROLE], UNIQUE_ID_RANDOM_LENGTH),
            account_id=self.account_id,
            name=name,
            path=path,
            arn=role_arn(self.account_id, name, path),
            created_at=now,
            trust_policy=trust_policy,
            description=description,
            max_session_duration=max_session_duration or DEFAULT_ROLE_SESSION,
        )
        async with self._store.write() as tx:
            await _check_principals_exist(tx, trust)
            identity = Identity(role.id, self.account_id, ROLE, name, path, role.arn, now)
            if not await tx.identities.insert_principal(identity):
                raise EntityAlreadyExists(f"Role with name {name} already exists.")
            await tx.iam.insert_role_details(
                role.id, trust_policy, description, role.max_session_duration
            )
        log.info("created role %s", role.arn)
        return role

    async def get_role(self, name: str) -> Role:
        async with self._store.read() as tx:
            role = await tx.iam.role_by_name(self.account_id, name)
        if role is None:
            raise no_such(ROLE, name)
        return role

    async def role_by_arn(self, arn: str) -> Role | None:
        """A role of any account on this server, by its ARN."""
        async with self._store.read() as tx:
            return await tx.iam.role_by_arn(arn)

    async def list_roles(self, path_prefix: str = "/") -> list[Role]:
        async with self._store.read() as tx:
            found = await tx.iam.list_roles(self.account_id)
        return [role for role in found if role.path.startswith(path_prefix)]

    async def update_role(
        self, name: str, *, description: str | None = None, max_session_duration: int | None = None
    ) -> Role:
        values: dict[str, object] = {}
        if description is not None:
            values["description"] = description
        if max_session_duration is not None:
            values["max_session_duration"] = max_session_duration
        async with self._store.write() as tx:
            role = await tx.iam.role_by_name(self.account_id, name, for_update=True)
            if role is None:
                raise no_such(ROLE, name)
            if values:
                await tx.iam.update_role(role.id, **values)
            updated = await tx.iam.role(role.id)
        assert updated is not None
        return updated

    async def update_trust_policy(self, name: str, trust_policy: str) -> None:
        trust = parse_document(trust_policy, PolicyKind.TRUST)
        async with self._store.write() as tx:
            role = await tx.iam.role_by_name(self.account_id, name, for_update=True)
            if role is None:
                raise no_such(ROLE, name)
            await _check_principals_exist(tx, trust)
            await tx.iam.update_role(role.id, trust_policy=trust_policy)
        log.info("updated the trust policy of %s", role.arn)

    async def delete_role(self, name: str) -> None:
        """Raises DeleteConflict while the role has inline or attached policies. Its sessions
        end with it."""
        async with self._store.write() as tx:
            role = await tx.iam.role_by_name(self.account_id, name, for_update=True)
            if role is None:
                raise no_such(ROLE, name)
            refuse_deletion(await tx.iam.dependents(Entity(ROLE, role.id)))
            await tx.identities.delete_principal(role.id)
        log.info("deleted role %s", role.arn)

    # -- groups -----------------------------------------------------------------------------

    async def create_group(self, name: str, *, path: str = "/") -> Group:
        validate_name(name, kind="group")
        validate_path(path)
        group = Group(
            id=random_id(UNIQUE_ID_PREFIXES[GROUP], UNIQUE_ID_RANDOM_LENGTH),
            account_id=self.account_id,
            name=name,
            path=path,
            arn=group_arn(self.account_id, name, path),
            created_at=self._clock(),
        )
        async with self._store.write() as tx:
            if not await tx.iam.insert_group(group):
                raise EntityAlreadyExists(f"Group with name {name} already exists.")
        log.info("created group %s", group.arn)
        return group

    async def get_group(self, name: str) -> GroupDetail:
        async with self._store.read() as tx:
            group = await tx.iam.group_by_name(self.account_id, name)
            if group is None:
                raise no_such(GROUP, name)
            return GroupDetail(group, await tx.iam.members(group.id))

    async def list_groups(self, path_prefix: str = "/") -> list[Group]:
        async with self._store.read() as tx:
            found = await tx.iam.list_groups(self.account_id)
        return [group for group in found if group.path.startswith(path_prefix)]

    async def delete_group(self, name: str) -> None:
        async with self._store.write() as tx:
            group = await tx.iam.group_by_name(self.account_id, name, for_update=True)
            if group is None:
                raise no_such(GROUP, name)
            refuse_deletion(await tx.iam.dependents(Entity(GROUP, group.id)))
            await tx.iam.delete_group(group.id)
        log.info("deleted group %s", group.arn)

    async def add_user_to_group(self, group_name: str, user_name: str) -> None:
        async with self._store.write() as tx:
            group = await self.entity(tx, GROUP, group_name, for_update=True)
            user = await self.entity(tx, USER, user_name, for_update=True)
            if len(await tx.iam.groups_of(user.id)) >= MAX_GROUPS_PER_USER:
                raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
            await tx.iam.add_member(group.id, user.id, self._clock())

    async def remove_user_from_group(self, group_name: str, user_name: str) -> None:
        async with self._store.write() as tx:
            group = await self.entity(tx, GROUP, group_name, for_update=True)
            user = await self.entity(tx, USER, user_name, for_update=True)
            if not await tx.iam.remove_member(group.id, user.id):
                raise NoSuchEntity(
                    f"The user with name {user_name} cannot be found in group {group_name}."
                )

    async def groups_for_user(self, user_name: str) -> list[Group]:
        async with self._store.read() as tx:
            user = await tx.identities.principal_by_name(self.account_id, USER, user_name)
            if user is None:
                raise no_such(USER, user_name)
            return await tx.iam.groups_of(user.id)

    # -- inline policies --------------------------------------------------------------------

    async def put_inline_policy(
        self, kind: EntityKind, entity_name: str, policy_name: str, document: str
    ) -> None:
        """Create or replace an inline policy. Raises PolicyError (malformed, or the entity's
        inline policies together over IAM's size limit)."""
        validate_policy_name(policy_name)
        parse_document(document, PolicyKind.INLINE)
        async with self._store.write() as tx:
            entity = await self.entity(tx, kind, entity_name, for_update=True)
            documents = await tx.iam_policies.inline_policies(entity)
            documents[policy_name] = document
            check_inline_size(documents.values(), kind, entity_name)
            await tx.iam_policies.put_inline(entity, policy_name, document, self._clock())

    async def get_inline_policy(self, kind: EntityKind, entity_name: str, policy_name: str) -> str:
        async with self._store.read() as tx:
            entity = await self.entity(tx, kind, entity_name)
            document = (await tx.iam_policies.inline_policies(entity)).get(policy_name)
        if document is None:
            raise NoSuchEntity(
                f"The {_ENTITY_NOUNS[kind]} policy with name {policy_name} cannot be found."
            )
        return document

    async def list_inline_policies(self, kind: EntityKind, entity_name: str) -> list[str]:
        async with self._store.read() as tx:
            entity = await self.entity(tx, kind, entity_name)
            return list(await tx.iam_policies.inline_policies(entity))

    async def delete_inline_policy(
        self, kind: EntityKind, entity_name: str, policy_name: str
    ) -> None:
        async with self._store.write() as tx:
            entity = await self.entity(tx, kind, entity_name, for_update=True)
            if not await tx.iam_policies.delete_inline(entity, policy_name):
                raise NoSuchEntity(
                    f"The {_ENTITY_NOUNS[kind]} policy with name {policy_name} cannot be found."
                )

    # -- what decides -----------------------------------------------------------------------

    async def identity_policies(self, principal: Principal) -> list[Policy]:
        """The identity-based policies that apply to the principal: those of its user or role
        (inline, attached managed) and of the user's groups; and for an account's
        administrator, its built-in AdministratorAccess (`identity_policies.is_administrator`).
        A document stored before it could be validated, and now fails to parse, is left out
        (and logged)."""
        async with self._store.read() as tx:
            documents = await tx.iam_policies.identity_documents(principal.holder_id)
        found: list[Policy] = [ADMINISTRATOR_ACCESS] if is_administrator(principal) else []
        for document in documents:
            try:
                found.append(parse_document(document, PolicyKind.INLINE))
            except PolicyError as exc:
                log.error("a stored policy of %s does not parse: %s", principal.arn, exc.reason)
        return found


async def _check_principals_exist(tx: Transaction, policy: Policy) -> None:
    """IAM refuses a trust policy naming a user or role that does not exist."""
    for arn in policy.principal_arns():
        if ":user/" not in arn and ":role/" not in arn:
            continue
        if not await tx.iam.principal_exists(arn):
            raise PolicyError(
                MALFORMED_POLICY_DOCUMENT, f'Invalid principal in policy: "AWS":"{arn}"'
            )


def paginate(
    items: Sequence[_T], key: Callable[[_T], str], marker: str | None, max_items: int | None
) -> tuple[list[_T], str | None]:
    """IAM's Marker/MaxItems paging: the items in order of `key`, the page after `marker` (the
    key of the last item of the page before) and the marker of the next page, if any."""
    items = sorted(items, key=key)
    start = 0
    if marker:
        start = next((i for i, item in enumerate(items) if key(item) > marker), len(items))
    limit = max_items or 100
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return page, (key(page[-1]) if more and page else None)
