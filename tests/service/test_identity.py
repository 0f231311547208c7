"""Users, access keys, the administrator, SigV4 key lookup and `/v2/` tokens, through the
identity service on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from cargohold.auth.errors import TokenExpired, TokenInvalid
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
from cargohold.service.identity import (
    KEY_USE_RESOLUTION,
    MASTER_KEY_FILE,
    IdentityService,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
TWELVE_HOURS = 12 * 3600


@pytest.fixture
def identity(store: MetadataStore, tmp_path: Path, now: list[float]) -> IdentityService:
    return IdentityService.from_data_dir(
        store, tmp_path, lambda: now[0], account_id=ACCOUNT, region="us-east-1"
    )


@pytest.fixture
def other_account(store: MetadataStore, tmp_path: Path, now: list[float]) -> IdentityService:
    """Another account on the same server and database, with the same master key."""
    return IdentityService.from_data_dir(
        store, tmp_path, lambda: now[0], account_id=OTHER_ACCOUNT, region="us-east-1"
    )


# -- users -------------------------------------------------------------------------------------


async def test_create_and_list_users(identity: IdentityService) -> None:
    alice = await identity.create_user("alice")
    assert alice.arn == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert alice.id.startswith("AIDA") and len(alice.id) == 21
    ci = await identity.create_user("ci-bot", path="/automation/")
    assert ci.arn == f"arn:aws:iam::{ACCOUNT}:user/automation/ci-bot"
    assert [u.name for u in await identity.list_users()] == ["alice", "ci-bot"]
    assert (await identity.get_user("alice")) == alice


async def test_user_names_are_unique_regardless_of_case(identity: IdentityService) -> None:
    await identity.create_user("Alice")
    with pytest.raises(EntityAlreadyExists, match="User with name alice already exists"):
        await identity.create_user("alice")
    assert [u.name for u in await identity.list_users()] == ["Alice"]
    assert (await identity.get_user("ALICE")).name == "Alice"


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "sl/ash", "ümlaut"])
async def test_invalid_user_names(identity: IdentityService, name: str) -> None:
    with pytest.raises(InvalidInput):
        await identity.create_user(name)


async def test_invalid_path(identity: IdentityService) -> None:
    with pytest.raises(InvalidInput):
        await identity.create_user("bob", path="no-slashes")


async def test_unknown_user(identity: IdentityService) -> None:
    with pytest.raises(NoSuchEntity, match="The user with name ghost cannot be found"):
        await identity.get_user("ghost")
    with pytest.raises(NoSuchEntity):
        await identity.create_access_key("ghost")
    with pytest.raises(NoSuchEntity):
        await identity.delete_user("ghost")
    with pytest.raises(NoSuchEntity):
        await identity.list_access_keys("ghost")


async def test_delete_user_with_keys_needs_force(identity: IdentityService) -> None:
    await identity.create_user("bob")
    created = await identity.create_access_key("bob")
    with pytest.raises(DeleteConflict):
        await identity.delete_user("bob")
    assert await identity.lookup_secret(created.key.id) == created.secret
    assert await identity.delete_user("bob", force=True) == [created.key.id]
    assert await identity.lookup_secret(created.key.id) is None
    assert await identity.list_users() == []
    await identity.create_user("carol")
    assert await identity.delete_user("carol") == []


async def test_the_administrator_cannot_be_deleted(identity: IdentityService) -> None:
    await identity.ensure_administrator()
    with pytest.raises(InvalidInput, match="administrator"):
        await identity.delete_user(ADMINISTRATOR, force=True)


# -- access keys -------------------------------------------------------------------------------


async def test_access_key_lifecycle(identity: IdentityService, now: list[float]) -> None:
    await identity.create_user("bob")
    created = await identity.create_access_key("bob")
    key = created.key
    assert is_access_key_id(key.id) and key.id.startswith("AKIA") and len(key.id) == 20
    assert len(created.secret) == 40
    assert key.status == "Active" and key.user_name == "bob" and key.created_at == now[0]
    assert await identity.lookup_secret(key.id) == created.secret
    principal = await identity.principal_for_key(key.id)
    assert principal == Principal(
        account_id=ACCOUNT,
        arn=f"arn:aws:iam::{ACCOUNT}:user/bob",
        principal_id=(await identity.get_user("bob")).id,
        access_key_id=key.id,
        username="bob",
    )

    assert (await identity.set_access_key_status(key.id, "Inactive")).status == "Inactive"
    assert await identity.lookup_secret(key.id) is None
    assert await identity.principal_for_key(key.id) is None
    assert [k.status for k in await identity.list_access_keys("bob")] == ["Inactive"]

    assert (await identity.set_access_key_status(key.id, "Active")).status == "Active"
    assert await identity.lookup_secret(key.id) == created.secret

    await identity.delete_access_key(key.id)
    assert await identity.lookup_secret(key.id) is None
    assert await identity.list_access_keys("bob") == []
    with pytest.raises(NoSuchEntity, match=f"The Access Key with id {key.id} cannot be found"):
        await identity.delete_access_key(key.id)


async def test_two_keys_per_user(identity: IdentityService) -> None:
    await identity.create_user("bob")
    first = await identity.create_access_key("bob")
    second = await identity.create_access_key("bob")
    assert first.secret != second.secret and first.key.id != second.key.id
    with pytest.raises(LimitExceeded, match="AccessKeysPerUser: 2"):
        await identity.create_access_key("bob")
    await identity.delete_access_key(first.key.id)
    await identity.create_access_key("bob")


async def test_list_access_keys_of_everyone(identity: IdentityService) -> None:
    await identity.create_user("bob")
    await identity.create_user("alice")
    bob = await identity.create_access_key("bob")
    alice = await identity.create_access_key("alice")
    listed = await identity.list_access_keys()
    assert [(k.user_name, k.id) for k in listed] == [
        ("alice", alice.key.id),
        ("bob", bob.key.id),
    ]


async def test_invalid_status_and_unknown_keys(identity: IdentityService) -> None:
    await identity.create_user("bob")
    key = (await identity.create_access_key("bob")).key
    with pytest.raises(InvalidInput, match="Active, Inactive"):
        await identity.set_access_key_status(key.id, "Enabled")
    for unknown in ("AKIAAAAAAAAAAAAAAAAA", "not-a-key", ""):
        with pytest.raises(NoSuchEntity):
            await identity.set_access_key_status(unknown, "Inactive")
        assert await identity.lookup_secret(unknown) is None
        assert await identity.principal_for_key(unknown) is None


async def test_accounts_do_not_manage_each_others_keys(
    identity: IdentityService, other_account: IdentityService
) -> None:
    await other_account.create_user("mallory")
    theirs = await other_account.create_access_key("mallory")
    with pytest.raises(NoSuchEntity):
        await identity.delete_access_key(theirs.key.id)
    with pytest.raises(NoSuchEntity):
        await identity.set_access_key_status(theirs.key.id, "Inactive")
    assert await identity.list_access_keys() == []
    assert await identity.list_users() == []
    # Authentication resolves every account's keys; authorization tells the accounts apart.
    principal = await identity.principal_for_key(theirs.key.id)
    assert principal is not None and principal.account_id == OTHER_ACCOUNT


async def test_key_use_is_recorded_at_most_once_a_minute(
    identity: IdentityService, now: list[float]
) -> None:
    await identity.create_user("bob")
    key_id = (await identity.create_access_key("bob")).key.id
    credential = await identity.resolve_key(key_id)
    assert credential is not None
    await identity.record_key_use(credential, "ecr", "us-east-1")
    first_use = now[0]
    now[0] += KEY_USE_RESOLUTION / 2
    credential = await identity.resolve_key(key_id)
    assert credential is not None and credential.key.last_used_at == first_use
    await identity.record_key_use(credential, "ecr", "us-east-1")
    (key,) = await identity.list_access_keys("bob")
    assert (key.last_used_at, key.last_used_service, key.last_used_region) == (
        first_use,
        "ecr",
        "us-east-1",
    )
    now[0] += KEY_USE_RESOLUTION
    credential = await identity.resolve_key(key_id)
    assert credential is not None
    await identity.record_key_use(credential, "sts", "eu-west-1")
    (key,) = await identity.list_access_keys("bob")
    assert (key.last_used_at, key.last_used_service) == (now[0], "sts")


# -- secrets at rest ---------------------------------------------------------------------------


async def test_secrets_are_sealed_with_the_key_id(
    identity: IdentityService, store: MetadataStore, tmp_path: Path
) -> None:
    await identity.create_user("bob")
    created = await identity.create_access_key("bob")
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
    await identity.create_user("eve")
    other = await identity.create_access_key("eve")
    async with store.write() as tx:
        await tx.conn.execute(
            sa.update(access_keys).where(access_keys.c.id == other.key.id).values(secret=sealed)
        )
    assert await identity.lookup_secret(other.key.id) is None


async def test_another_master_key_cannot_read_the_secrets(
    identity: IdentityService, store: MetadataStore, tmp_path: Path, now: list[float]
) -> None:
    await identity.create_user("bob")
    key_id = (await identity.create_access_key("bob")).key.id
    stranger = IdentityService.from_data_dir(
        store, tmp_path / "elsewhere", lambda: now[0], account_id=ACCOUNT, region="us-east-1"
    )
    assert await stranger.lookup_secret(key_id) is None


async def test_no_secret_reaches_logs_or_reprs(
    identity: IdentityService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await identity.ensure_administrator()
    await identity.create_user("bob")
    created = await identity.create_access_key("bob")
    credential = await identity.resolve_key(created.key.id)
    password, _ = identity.issue_password(admin.user.as_principal(admin.key.id))
    texts = [caplog.text, repr(admin), repr(created), repr(credential), repr(identity)]
    for secret in (admin.secret, created.secret, password):
        for text in texts:
            assert secret not in text
    assert created.key.id in caplog.text  # the logging did happen


# -- the administrator -------------------------------------------------------------------------


async def test_ensure_administrator_is_idempotent(identity: IdentityService) -> None:
    first = await identity.ensure_administrator()
    assert first.created and first.user.name == ADMINISTRATOR
    assert first.user.arn == f"arn:aws:iam::{ACCOUNT}:user/admin"
    again = await identity.ensure_administrator()
    assert not again.created
    assert (again.key.id, again.secret) == (first.key.id, first.secret)
    assert [k.id for k in await identity.list_access_keys(ADMINISTRATOR)] == [first.key.id]
    current = await identity.administrator_key()
    assert (current.key.id, current.secret) == (first.key.id, first.secret)


async def test_concurrent_first_starts_make_one_administrator_key(
    identity: IdentityService,
) -> None:
    results = []

    async def start() -> None:
        results.append(await identity.ensure_administrator())

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(start)
    assert sum(result.created for result in results) == 1
    assert len({result.key.id for result in results}) == 1
    assert len(await identity.list_access_keys(ADMINISTRATOR)) == 1


async def test_rotate_replaces_the_administrators_key(identity: IdentityService) -> None:
    first = await identity.ensure_administrator()
    password, _ = identity.issue_password(first.user.as_principal(first.key.id))
    rotated = await identity.ensure_administrator(rotate=True)
    assert rotated.created and rotated.key.id != first.key.id
    assert await identity.lookup_secret(first.key.id) is None
    with pytest.raises(TokenInvalid):
        await identity.authenticate_password(password)
    assert [k.id for k in await identity.list_access_keys(ADMINISTRATOR)] == [rotated.key.id]


async def test_a_deactivated_administrator_key_is_replaced(identity: IdentityService) -> None:
    first = await identity.ensure_administrator()
    await identity.set_access_key_status(first.key.id, "Inactive")
    with pytest.raises(NoSuchEntity, match="cargohold admin init"):
        await identity.administrator_key()
    second = await identity.ensure_administrator()
    assert second.created and second.key.id != first.key.id
    await identity.set_access_key_status(second.key.id, "Inactive")
    with pytest.raises(LimitExceeded, match="--rotate"):
        await identity.ensure_administrator()
    assert (await identity.ensure_administrator(rotate=True)).created


# -- /v2/ tokens -------------------------------------------------------------------------------


async def _bob(identity: IdentityService) -> Principal:
    await identity.create_user("bob")
    key_id = (await identity.create_access_key("bob")).key.id
    principal = await identity.principal_for_key(key_id)
    assert principal is not None
    return principal


async def test_authorization_token_round_trip(identity: IdentityService, now: list[float]) -> None:
    bob = await _bob(identity)
    token, expires_at = identity.issue_authorization_token(bob)
    assert expires_at == now[0] + TWELVE_HOURS
    user, _, password = base64.b64decode(token).decode().partition(":")
    assert user == "AWS"
    assert await identity.authenticate_password(password) == bob
    header = "Basic " + token
    assert await identity.authenticate_basic(header) == bob


async def test_token_expires_after_twelve_hours(
    identity: IdentityService, now: list[float]
) -> None:
    bob = await _bob(identity)
    password, _ = identity.issue_password(bob)
    now[0] += TWELVE_HOURS - 1
    assert await identity.authenticate_password(password) == bob
    now[0] += 1
    with pytest.raises(TokenExpired):
        await identity.authenticate_password(password)


async def test_a_header_seen_before_still_expires(
    identity: IdentityService, now: list[float]
) -> None:
    bob = await _bob(identity)
    token, _ = identity.issue_authorization_token(bob)
    header = "Basic " + token
    assert await identity.authenticate_basic(header) == bob  # now kept by the read cache
    now[0] += TWELVE_HOURS
    with pytest.raises(TokenExpired):
        await identity.authenticate_basic(header)


async def test_token_dies_with_its_key(identity: IdentityService) -> None:
    bob = await _bob(identity)
    assert bob.access_key_id is not None
    password, _ = identity.issue_password(bob)
    await identity.set_access_key_status(bob.access_key_id, "Inactive")
    with pytest.raises(TokenInvalid):
        await identity.authenticate_password(password)
    await identity.set_access_key_status(bob.access_key_id, "Active")
    assert await identity.authenticate_password(password) == bob
    await identity.delete_access_key(bob.access_key_id)
    with pytest.raises(TokenInvalid):
        await identity.authenticate_password(password)


async def test_token_dies_with_its_user(identity: IdentityService) -> None:
    bob = await _bob(identity)
    password, _ = identity.issue_password(bob)
    await identity.delete_user("bob", force=True)
    with pytest.raises(TokenInvalid):
        await identity.authenticate_password(password)
    # A new bob is another principal: the old token does not become his.
    await identity.create_user("bob")
    with pytest.raises(TokenInvalid):
        await identity.authenticate_password(password)


async def test_tampered_and_foreign_tokens(
    identity: IdentityService, store: MetadataStore, now: list[float]
) -> None:
    bob = await _bob(identity)
    password, _ = identity.issue_password(bob)
    version, payload, mac = password.split(".")
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    for bad in (
        f"{version}.{payload}.{flipped}",
        f"{version}.{payload[:-1]}.{mac}",
        password + "x",
        "",
        "AWS",
    ):
        with pytest.raises(TokenInvalid):
            await identity.authenticate_password(bad)
    # The same claims signed under another key are refused.
    forger = TokenSigner(b"k" * 32)
    forged, _ = forger.issue(
        account_id=bob.account_id,
        principal_arn=bob.arn,
        principal_id=bob.principal_id,
        access_key_id=bob.access_key_id or "",
        now=identity._now(),
    )
    with pytest.raises(TokenInvalid):
        await identity.authenticate_password(forged)
    for header in ("Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"bob:" + b"x").decode()):
        with pytest.raises(TokenInvalid):
            await identity.authenticate_basic(header)


async def test_a_token_needs_an_access_key(identity: IdentityService) -> None:
    root = Principal(account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", principal_id=ACCOUNT)
    with pytest.raises(ValueError, match="access key"):
        identity.issue_authorization_token(root)
