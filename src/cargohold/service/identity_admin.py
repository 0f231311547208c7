"""Administering one account's identities: users and their access keys, and the registry's
administrator, for the admin CLI and the IAM API.

- Users: create, get, list, delete (with `force`, their keys, policies and groups too).
- Access keys: create (the secret is returned once and stored sealed), list, activate,
  deactivate, delete; at most two per user. Deactivating or deleting a key revokes its `/v2/`
  tokens at once (see `cargohold.service.authentication`).
- The administrator (`admin`) and its key, made on `cargohold admin init` or first start.

Secrets are generated here and sealed with the SecretBox before they reach the database (the key
id is the sealing context, so a ciphertext moved to another row does not open).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cargohold.auth.secretbox import SecretBox
from cargohold.domain.identity import (
    ACCESS_KEY_PREFIX,
    ACCESS_KEY_RANDOM_LENGTH,
    ACTIVE,
    ADMINISTRATOR,
    MAX_ACCESS_KEYS_PER_USER,
    UNIQUE_ID_PREFIXES,
    UNIQUE_ID_RANDOM_LENGTH,
    USER,
    AccessKey,
    AccessKeyStatus,
    DeleteConflict,
    Entity,
    EntityAlreadyExists,
    Identity,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    is_access_key_id,
    user_arn,
    validate_name,
    validate_path,
    validate_status,
)
from cargohold.ports import Metadata, Transaction
from cargohold.service.credentials import (
    AdministratorKey,
    NewAccessKey,
    new_secret,
    no_such_key,
    no_such_user,
    random_id,
    refuse_deletion,
)

log = logging.getLogger(__name__)


class IdentityAdmin:
    """Users and access keys of one registry account, over the metadata store and the secret box."""

    def __init__(
        self,
        store: Metadata,
        box: SecretBox,
        clock: Callable[[], float],
        *,
        account_id: str,
        region: str,
    ) -> None:
        self._store = store
        self._box = box
        self._clock = clock
        self.account_id = account_id
        self.region = region

    def for_account(self, account_id: str) -> IdentityAdmin:
        """The same service for another account on this server (the caller's, in IAM calls)."""
        if account_id == self.account_id:
            return self
        return IdentityAdmin(
            self._store, self._box, self._clock, account_id=account_id, region=self.region
        )

    # -- the account ----------------------------------------------------------------------

    async def account_exists(self) -> bool:
        async with self._store.read() as tx:
            return await tx.registries.registry_exists(self.account_id)

    async def delete_account(self) -> None:
        """Delete this account: its registry, users, roles, groups, keys, sessions and
        policies. An account that still holds repositories is refused (DeleteConflict): their
        images go with `aws ecr delete-repository --force` first."""
        async with self._store.write() as tx:
            if not await tx.registries.registry_exists(self.account_id):
                raise NoSuchEntity(f"The account {self.account_id} does not exist on this server.")
            held = await tx.repositories.list_repositories(self.account_id, limit=1)
            if held:
                raise DeleteConflict(
                    f"The account {self.account_id} still holds repositories (such as "
                    f"{held[0].name}); delete them first "
                    "(aws ecr delete-repository --force --repository-name NAME)."
                )
            await tx.registries.delete_registry(self.account_id)
        log.info("deleted account %s", self.account_id)

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, name: str, *, path: str = "/") -> Identity:
        """Raises InvalidInput for a bad name or path, EntityAlreadyExists if the name is taken."""
        validate_name(name)
        validate_path(path)
        async with self._store.write() as tx:
            await tx.registries.ensure_registry(self.account_id, self.region, self._clock())
            user = await self._insert_user(tx, name, path)
        if user is None:
            raise EntityAlreadyExists(f"User with name {name} already exists.")
        log.info("created user %s", user.arn)
        return user

    async def _insert_user(self, tx: Transaction, name: str, path: str) -> Identity | None:
        user = Identity(
            id=random_id(UNIQUE_ID_PREFIXES[USER], UNIQUE_ID_RANDOM_LENGTH),
            account_id=self.account_id,
            kind=USER,
            name=name,
            path=path,
            arn=user_arn(self.account_id, name, path),
            created_at=self._clock(),
        )
        return user if await tx.identities.insert_principal(user) else None

    async def get_user(self, name: str) -> Identity:
        async with self._store.read() as tx:
            user = await tx.identities.principal_by_name(self.account_id, USER, name)
        if user is None:
            raise no_such_user(name)
        return user

    async def list_users(self) -> list[Identity]:
        async with self._store.read() as tx:
            return await tx.identities.list_principals(self.account_id, USER)

    async def delete_user(self, name: str, *, force: bool = False) -> list[str]:
        """Delete a user; with `force`, its access keys, inline policies, policy attachments
        and group memberships too (the keys' ids are returned).

        Without `force` a user that still has any of them raises DeleteConflict, as IAM does.
        The administrator cannot be deleted: `cargohold admin init --rotate` replaces its key.
        """
        if name.lower() == ADMINISTRATOR:
            raise InvalidInput(
                f"The user {ADMINISTRATOR} is the registry's administrator and cannot be deleted; "
                "`cargohold admin init --rotate` replaces its access key."
            )
        async with self._store.write() as tx:
            user = await tx.identities.principal_by_name(
                self.account_id, USER, name, for_update=True
            )
            if user is None:
                raise no_such_user(name)
            keys = [key.id for key in await tx.identities.access_keys_of(user.id)]
            if not force:
                refuse_deletion(await tx.iam.dependents(Entity(USER, user.id)))
            await tx.identities.delete_principal(user.id)
        log.info("deleted user %s and %d access key(s)", user.arn, len(keys))
        return keys

    # -- access keys ------------------------------------------------------------------------

    async def create_access_key(self, user_name: str) -> NewAccessKey:
        """A new Active key for the user; its secret is in the result and nowhere else.

        Raises NoSuchEntity for an unknown user, LimitExceeded past two keys per user.
        """
        async with self._store.write() as tx:
            user = await tx.identities.principal_by_name(
                self.account_id, USER, user_name, for_update=True
            )
            if user is None:
                raise no_such_user(user_name)
            created = await self._add_key(tx, user)
        log.info("created access key %s for %s", created.key.id, user.arn)
        return created

    async def _add_key(self, tx: Transaction, user: Identity) -> NewAccessKey:
        existing = await tx.identities.access_keys_of(user.id)
        if len(existing) >= MAX_ACCESS_KEYS_PER_USER:
            raise LimitExceeded(
                f"Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"
            )
        key_id = random_id(ACCESS_KEY_PREFIX, ACCESS_KEY_RANDOM_LENGTH)
        secret = new_secret()
        now = self._clock()
        await tx.identities.insert_access_key(
            key_id=key_id,
            principal_id=user.id,
            secret_ciphertext=self._box.encrypt(secret.encode("ascii"), context=key_id.encode()),
            status=ACTIVE,
            now=now,
        )
        key = AccessKey(
            id=key_id, principal_id=user.id, user_name=user.name, status=ACTIVE, created_at=now
        )
        return NewAccessKey(key, secret)

    async def list_access_keys(self, user_name: str | None = None) -> list[AccessKey]:
        """The keys of one user, or of every user of the account (by user, oldest first)."""
        async with self._store.read() as tx:
            if user_name is None:
                return await tx.identities.access_keys_in(self.account_id)
            user = await tx.identities.principal_by_name(self.account_id, USER, user_name)
            if user is None:
                raise no_such_user(user_name)
            return await tx.identities.access_keys_of(user.id)

    async def get_access_key(self, key_id: str) -> AccessKey:
        async with self._store.read() as tx:
            key = await self._own_key(tx, key_id)
        return key

    async def _own_key(self, tx: Transaction, key_id: str) -> AccessKey:
        """The key, if it belongs to a principal of this account; else NoSuchEntity."""
        key = await tx.identities.access_key(key_id) if is_access_key_id(key_id) else None
        if key is None:
            raise no_such_key(key_id)
        owner = await tx.identities.principal(key.principal_id)
        if owner is None or owner.account_id != self.account_id:
            raise no_such_key(key_id)
        return key

    async def set_access_key_status(self, key_id: str, status: str) -> AccessKey:
        """Activate or deactivate a key. Deactivating revokes its `/v2/` tokens at once."""
        new_status: AccessKeyStatus = validate_status(status)
        async with self._store.write() as tx:
            await self._own_key(tx, key_id)
            await tx.identities.set_access_key_status(key_id, new_status)
            key = await self._own_key(tx, key_id)
        log.info("access key %s is now %s", key_id, new_status)
        return key

    async def delete_access_key(self, key_id: str) -> None:
        """Delete a key; its `/v2/` tokens stop working at once."""
        async with self._store.write() as tx:
            await self._own_key(tx, key_id)
            await tx.identities.delete_access_key(key_id)
        log.info("deleted access key %s", key_id)

    # -- the administrator ------------------------------------------------------------------

    async def ensure_administrator(self, *, rotate: bool = False) -> AdministratorKey:
        """Make sure the administrator exists with an Active key, and return that key.

        Idempotent: with an Active key in place nothing is created. `rotate` deletes the
        administrator's keys (revoking their tokens) and creates a new one. Safe to run on many
        nodes at once: the administrator's row is locked while its keys are decided.
        """
        async with self._store.write() as tx:
            await tx.registries.ensure_registry(self.account_id, self.region, self._clock())
            await self._insert_user(tx, ADMINISTRATOR, "/")
            user = await tx.identities.principal_by_name(
                self.account_id, USER, ADMINISTRATOR, for_update=True
            )
            assert user is not None, "the administrator was inserted in this transaction"
            keys = await tx.identities.access_keys_of(user.id)
            active = [key for key in keys if key.status == ACTIVE]
            if active and not rotate:
                key = active[-1]
                return AdministratorKey(user, key, await self._secret_of(tx, key.id), False)
            if rotate:
                for key in keys:
                    await tx.identities.delete_access_key(key.id)
            elif len(keys) >= MAX_ACCESS_KEYS_PER_USER:
                raise LimitExceeded(
                    f"The administrator's {len(keys)} access keys are all inactive; activate one "
                    "(`cargohold admin access-key activate KEYID`) or replace them "
                    "(`cargohold admin init --rotate`)."
                )
            created = await self._add_key(tx, user)
        log.info("created administrator access key %s for %s", created.key.id, user.arn)
        return AdministratorKey(user, created.key, created.secret, True)

    async def administrator_key(self) -> AdministratorKey:
        """The administrator's newest Active key and its secret, for scripts and CI."""
        async with self._store.read() as tx:
            user = await tx.identities.principal_by_name(self.account_id, USER, ADMINISTRATOR)
            active = [] if user is None else await tx.identities.access_keys_of(user.id)
            active = [key for key in active if key.status == ACTIVE]
            if user is None or not active:
                raise NoSuchEntity(
                    "The administrator has no active access key; run `cargohold admin init`."
                )
            key = active[-1]
            return AdministratorKey(user, key, await self._secret_of(tx, key.id), False)

    async def _secret_of(self, tx: Transaction, key_id: str) -> str:
        sealed = await tx.identities.access_key_secret(key_id)
        if sealed is None:
            raise no_such_key(key_id)
        return self._box.decrypt(sealed, context=key_id.encode()).decode("ascii")
