"""Users, access keys and the administrator, through `IdentityAdmin` on SQLite and PostgreSQL
(`cargohold.service.identity_admin`); the keys it makes checked with `Authentication`."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from cargohold.auth.errors import TokenInvalid
from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import TokenSigner
from cargohold.domain.identity import (
    ADMINISTRATOR,
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    is_access_key_id,
)
from cargohold.domain.principal import Principal
from cargohold.metadata.schema import access_keys
from cargohold.metadata.store import MetadataStore
from cargohold.service.authentication import Authentication
from cargohold.service.credentials import MASTER_KEY_FILE, TOKEN_KEY_PURPOSE
from cargohold.service.identity_admin import IdentityAdmin

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_key_file(tmp_path / MASTER_KEY_FILE)


@pytest.fixture
def identity_admin(store: MetadataStore, box: SecretBox, now: list[float]) -> IdentityAdmin:
    return IdentityAdmin(store, box, lambda: now[0], account_id=ACCOUNT, region="us-east-1")


@pytest.fixture
def authentication(store: MetadataStore, box: SecretBox, now: list[float]) -> Authentication:
    """What the keys the tests make are checked with."""
    return Authentication(
        store, box, TokenSigner(box.derive_key(TOKEN_KEY_PURPOSE)), lambda: now[0]
    )


@pytest.fixture
def other_account(identity_admin: IdentityAdmin) -> IdentityAdmin:
    """Another account on the same server and database, with the same master key."""
    return identity_admin.for_account(OTHER_ACCOUNT)


# -- users -------------------------------------------------------------------------------------


async def test_create_and_list_users(identity_admin: IdentityAdmin) -> None:
    alice = await identity_admin.create_user("alice")
    assert alice.arn == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert alice.id.startswith("AIDA") and len(alice.id) == 21
    ci = await identity_admin.create_user("ci-bot", path="/automation/")
    assert ci.arn == f"arn:aws:iam::{ACCOUNT}:user/automation/ci-bot"
    assert [u.name for u in await identity_admin.list_users()] == ["alice", "ci-bot"]
    assert (await identity_admin.get_user("alice")) == alice


async def test_user_names_are_unique_regardless_of_case(identity_admin: IdentityAdmin) -> None:
    await identity_admin.create_user("Alice")
    with pytest.raises(EntityAlreadyExists, match="User with name alice already exists"):
        await identity_admin.create_user("alice")
    assert [u.name for u in await identity_admin.list_users()] == ["Alice"]
    assert (await identity_admin.get_user("ALICE")).name == "Alice"


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "sl/ash", "ümlaut"])
async def test_invalid_user_names(identity_admin: IdentityAdmin, name: str) -> None:
    with pytest.raises(InvalidInput):
        await identity_admin.create_user(name)


async def test_invalid_path(identity_admin: IdentityAdmin) -> None:
    with pytest.raises(InvalidInput):
        await identity_admin.create_user("bob", path="no-slashes")


async def test_unknown_user(identity_admin: IdentityAdmin) -> None:
    with pytest.raises(NoSuchEntity, match="The user with name ghost cannot be found"):
        await identity_admin.get_user("ghost")
    with pytest.raises(NoSuchEntity):
        await identity_admin.create_access_key("ghost")
    with pytest.raises(NoSuchEntity):
        await identity_admin.delete_user("ghost")
    with pytest.raises(NoSuchEntity):
        await identity_admin.list_access_keys("ghost")


async def test_delete_user_with_keys_needs_force(
    identity_admin: IdentityAdmin, authentication: Authentication
) -> None:
    await identity_admin.create_user("bob")
    created = await identity_admin.create_access_key("bob")
    with pytest.raises(DeleteConflict):
        await identity_admin.delete_user("bob")
    assert await authentication.lookup_secret(created.key.id) == created.secret
    assert await identity_admin.delete_user("bob", force=True) == [created.key.id]
    assert await authentication.lookup_secret(created.key.id) is None
    assert await identity_admin.list_users() == []
    await identity_admin.create_user("carol")
    assert await identity_admin.delete_user("carol") == []


async def test_the_administrator_cannot_be_deleted(identity_admin: IdentityAdmin) -> None:
    await identity_admin.ensure_administrator()
    with pytest.raises(InvalidInput, match="administrator"):
        await identity_admin.delete_user(ADMINISTRATOR, force=True)


# -- access keys -------------------------------------------------------------------------------


async def test_access_key_lifecycle(
    identity_admin: IdentityAdmin, authentication: Authentication, now: list[float]
) -> None:
    await identity_admin.create_user("bob")
    created = await identity_admin.create_access_key("bob")
    key = created.key
    assert is_access_key_id(key.id) and key.id.startswith("AKIA") and len(key.id) == 20
    assert len(created.secret) == 40
    assert key.status == "Active" and key.user_name == "bob" and key.created_at == now[0]
    assert await authentication.lookup_secret(key.id) == created.secret
    principal = await authentication.principal_for_key(key.id)
    assert principal == Principal(
        account_id=ACCOUNT,
        arn=f"arn:aws:iam::{ACCOUNT}:user/bob",
        principal_id=(await identity_admin.get_user("bob")).id,
        access_key_id=key.id,
        username="bob",
    )

    assert (await identity_admin.set_access_key_status(key.id, "Inactive")).status == "Inactive"
    assert await authentication.lookup_secret(key.id) is None
    assert await authentication.principal_for_key(key.id) is None
    assert [k.status for k in await identity_admin.list_access_keys("bob")] == ["Inactive"]

    assert (await identity_admin.set_access_key_status(key.id, "Active")).status == "Active"
    assert await authentication.lookup_secret(key.id) == created.secret

    await identity_admin.delete_access_key(key.id)
    assert await authentication.lookup_secret(key.id) is None
    assert await identity_admin.list_access_keys("bob") == []
    with pytest.raises(NoSuchEntity, match=f"The Access Key with id {key.id} cannot be found"):
        await identity_admin.delete_access_key(key.id)


async def test_two_keys_per_user(identity_admin: IdentityAdmin) -> None:
    await identity_admin.create_user("bob")
    first = await identity_admin.create_access_key("bob")
    second = await identity_admin.create_access_key("bob")
    assert first.secret != second.secret and first.key.id != second.key.id
    with pytest.raises(LimitExceeded, match="AccessKeysPerUser: 2"):
        await identity_admin.create_access_key("bob")
    await identity_admin.delete_access_key(first.key.id)
    await identity_admin.create_access_key("bob")


async def test_list_access_keys_of_everyone(identity_admin: IdentityAdmin) -> None:
    await identity_admin.create_user("bob")
    await identity_admin.create_user("alice")
    bob = await identity_admin.create_access_key("bob")
    alice = await identity_admin.create_access_key("alice")
    listed = await identity_admin.list_access_keys()
    assert [(k.user_name, k.id) for k in listed] == [
        ("alice", alice.key.id),
        ("bob", bob.key.id),
    ]


async def test_invalid_status_and_unknown_keys(
    identity_admin: IdentityAdmin, authentication: Authentication
) -> None:
    await identity_admin.create_user("bob")
    key = (await identity_admin.create_access_key("bob")).key
    with pytest.raises(InvalidInput, match="Active, Inactive"):
        await identity_admin.set_access_key_status(key.id, "Enabled")
    for unknown in ("AKIAAAAAAAAAAAAAAAAA", "not-a-key", ""):
        with pytest.raises(NoSuchEntity):
            await identity_admin.set_access_key_status(unknown, "Inactive")
        assert await authentication.lookup_secret(unknown) is None
        assert await authentication.principal_for_key(unknown) is None


async def test_accounts_do_not_manage_each_others_keys(
    identity_admin: IdentityAdmin, authentication: Authentication, other_account: IdentityAdmin
) -> None:
    await other_account.create_user("mallory")
    theirs = await other_account.create_access_key("mallory")
    with pytest.raises(NoSuchEntity):
        await identity_admin.delete_access_key(theirs.key.id)
    with pytest.raises(NoSuchEntity):
        await identity_admin.set_access_key_status(theirs.key.id, "Inactive")
    assert await identity_admin.list_access_keys() == []
    assert await identity_admin.list_users() == []
    # Authentication resolves every account's keys; authorization tells the accounts apart.
    principal = await authentication.principal_for_key(theirs.key.id)
    assert principal is not None and principal.account_id == OTHER_ACCOUNT


# -- secrets at rest ---------------------------------------------------------------------------


async def test_secrets_are_sealed_with_the_key_id(
    identity_admin: IdentityAdmin,
    authentication: Authentication,
    store: MetadataStore,
    tmp_path: Path,
) -> None:
    await identity_admin.create_user("bob")
    created = await identity_admin.create_access_key("bob")
    async with store.read() as tx:
        sealed = (
            await tx.conn.execute(
                sa.select(access_keys.c.secret).where(access_keys.c.id == created.key.id)
            )
        ).scalar_one()
    assert created.secret.encode() not in bytes(sealed)
    box = SecretBox.from_key_file(tmp_path / MASTER_KEY_FILE)
    assert box.decrypt(bytes(sealed), context=created.key.id.encode()) == created.secret.encode()
    # Moved onto another key's row, the ciphertext no longer opens: that key cannot authenticate.
    await identity_admin.create_user("eve")
    other = await identity_admin.create_access_key("eve")
    async with store.write() as tx:
        await tx.conn.execute(
            sa.update(access_keys).where(access_keys.c.id == other.key.id).values(secret=sealed)
        )
    assert await authentication.lookup_secret(other.key.id) is None


# -- the administrator -------------------------------------------------------------------------


async def test_ensure_administrator_is_idempotent(identity_admin: IdentityAdmin) -> None:
    first = await identity_admin.ensure_administrator()
    assert first.created and first.user.name == ADMINISTRATOR
    assert first.user.arn == f"arn:aws:iam::{ACCOUNT}:user/admin"
    again = await identity_admin.ensure_administrator()
    assert not again.created
    assert (again.key.id, again.secret) == (first.key.id, first.secret)
    assert [k.id for k in await identity_admin.list_access_keys(ADMINISTRATOR)] == [first.key.id]
    current = await identity_admin.administrator_key()
    assert (current.key.id, current.secret) == (first.key.id, first.secret)


async def test_concurrent_first_starts_make_one_administrator_key(
    identity_admin: IdentityAdmin,
) -> None:
    results = []

    async def start() -> None:
        results.append(await identity_admin.ensure_administrator())

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(start)
    assert sum(result.created for result in results) == 1
    assert len({result.key.id for result in results}) == 1
    assert len(await identity_admin.list_access_keys(ADMINISTRATOR)) == 1


async def test_rotate_replaces_the_administrators_key(
    identity_admin: IdentityAdmin, authentication: Authentication
) -> None:
    first = await identity_admin.ensure_administrator()
    password, _ = authentication.issue_password(first.user.as_principal(first.key.id))
    rotated = await identity_admin.ensure_administrator(rotate=True)
    assert rotated.created and rotated.key.id != first.key.id
    assert await authentication.lookup_secret(first.key.id) is None
    with pytest.raises(TokenInvalid):
        await authentication.authenticate_password(password)
    assert [k.id for k in await identity_admin.list_access_keys(ADMINISTRATOR)] == [rotated.key.id]


async def test_a_deactivated_administrator_key_is_replaced(identity_admin: IdentityAdmin) -> None:
    first = await identity_admin.ensure_administrator()
    await identity_admin.set_access_key_status(first.key.id, "Inactive")
    with pytest.raises(NoSuchEntity, match="cargohold admin init"):
        await identity_admin.administrator_key()
    second = await identity_admin.ensure_administrator()
    assert second.created and second.key.id != first.key.id
    await identity_admin.set_access_key_status(second.key.id, "Inactive")
    with pytest.raises(LimitExceeded, match="--rotate"):
        await identity_admin.ensure_administrator()
    assert (await identity_admin.ensure_administrator(rotate=True)).created
