"""SigV4 key lookup, key use and `/v2/` tokens, through `Authentication` on SQLite and
PostgreSQL (`cargohold.service.authentication`), of users and keys `IdentityAdmin` makes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from cargohold.auth.errors import TokenExpired, TokenInvalid
from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import TokenSigner
from cargohold.domain.principal import Principal
from cargohold.metadata.store import MetadataStore
from cargohold.service.authentication import Authentication
from cargohold.service.credentials import KEY_USE_RESOLUTION, MASTER_KEY_FILE, TOKEN_KEY_PURPOSE
from cargohold.service.identity_admin import IdentityAdmin

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

ACCOUNT = "123456789012"
TWELVE_HOURS = 12 * 3600


def sealed_by(store: MetadataStore, box: SecretBox, now: list[float]) -> Authentication:
    return Authentication(
        store, box, TokenSigner(box.derive_key(TOKEN_KEY_PURPOSE)), lambda: now[0]
    )


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_key_file(tmp_path / MASTER_KEY_FILE)


@pytest.fixture
def authentication(store: MetadataStore, box: SecretBox, now: list[float]) -> Authentication:
    return sealed_by(store, box, now)


@pytest.fixture
def identity_admin(store: MetadataStore, box: SecretBox, now: list[float]) -> IdentityAdmin:
    """Where the users and keys the tests authenticate come from."""
    return IdentityAdmin(store, box, lambda: now[0], account_id=ACCOUNT, region="us-east-1")


# -- SigV4 keys --------------------------------------------------------------------------------


async def test_key_use_is_recorded_at_most_once_a_minute(
    identity_admin: IdentityAdmin, authentication: Authentication, now: list[float]
) -> None:
    await identity_admin.create_user("bob")
    key_id = (await identity_admin.create_access_key("bob")).key.id
    credential = await authentication.resolve_key(key_id)
    assert credential is not None
    await authentication.record_key_use(credential, "ecr", "us-east-1")
    first_use = now[0]
    now[0] += KEY_USE_RESOLUTION / 2
    credential = await authentication.resolve_key(key_id)
    assert credential is not None and credential.key.last_used_at == first_use
    await authentication.record_key_use(credential, "ecr", "us-east-1")
    (key,) = await identity_admin.list_access_keys("bob")
    assert (key.last_used_at, key.last_used_service, key.last_used_region) == (
        first_use,
        "ecr",
        "us-east-1",
    )
    now[0] += KEY_USE_RESOLUTION
    credential = await authentication.resolve_key(key_id)
    assert credential is not None
    await authentication.record_key_use(credential, "sts", "eu-west-1")
    (key,) = await identity_admin.list_access_keys("bob")
    assert (key.last_used_at, key.last_used_service) == (now[0], "sts")


async def test_another_master_key_cannot_read_the_secrets(
    identity_admin: IdentityAdmin, store: MetadataStore, tmp_path: Path, now: list[float]
) -> None:
    await identity_admin.create_user("bob")
    key_id = (await identity_admin.create_access_key("bob")).key.id
    stranger = sealed_by(
        store, SecretBox.from_key_file(tmp_path / "elsewhere" / MASTER_KEY_FILE), now
    )
    assert await stranger.lookup_secret(key_id) is None


# -- /v2/ tokens -------------------------------------------------------------------------------


async def _bob(identity_admin: IdentityAdmin, authentication: Authentication) -> Principal:
    await identity_admin.create_user("bob")
    key_id = (await identity_admin.create_access_key("bob")).key.id
    principal = await authentication.principal_for_key(key_id)
    assert principal is not None
    return principal


async def test_authorization_token_round_trip(
    identity_admin: IdentityAdmin, authentication: Authentication, now: list[float]
) -> None:
    bob = await _bob(identity_admin, authentication)
    token, expires_at = authentication.issue_authorization_token(bob)
    assert expires_at == now[0] + TWELVE_HOURS
    user, _, password = base64.b64decode(token).decode().partition(":")
    assert user == "AWS"
    assert await authentication.authenticate_password(password) == bob
    header = "Basic " + token
    assert await authentication.authenticate_basic(header) == bob


async def test_token_expires_after_twelve_hours(
    identity_admin: IdentityAdmin, authentication: Authentication, now: list[float]
) -> None:
    bob = await _bob(identity_admin, authentication)
    password, _ = authentication.issue_password(bob)
    now[0] += TWELVE_HOURS - 1
    assert await authentication.authenticate_password(password) == bob
    now[0] += 1
    with pytest.raises(TokenExpired):
        await authentication.authenticate_password(password)


async def test_a_header_seen_before_still_expires(
    identity_admin: IdentityAdmin, authentication: Authentication, now: list[float]
) -> None:
    bob = await _bob(identity_admin, authentication)
    token, _ = authentication.issue_authorization_token(bob)
    header = "Basic " + token
    assert await authentication.authenticate_basic(header) == bob  # now kept by the read cache
    now[0] += TWELVE_HOURS
    with pytest.raises(TokenExpired):
        await authentication.authenticate_basic(header)


async def test_token_dies_with_its_key(
    identity_admin: IdentityAdmin, authentication: Authentication
) -> None:
    bob = await _bob(identity_admin, authentication)
    assert bob.access_key_id is not None
    password, _ = authentication.issue_password(bob)
    await identity_admin.set_access_key_status(bob.access_key_id, "Inactive")
    with pytest.raises(TokenInvalid):
        await authentication.authenticate_password(password)
    await identity_admin.set_access_key_status(bob.access_key_id, "Active")
    assert await authentication.authenticate_password(password) == bob
    await identity_admin.delete_access_key(bob.access_key_id)
    with pytest.raises(TokenInvalid):
        await authentication.authenticate_password(password)


async def test_token_dies_with_its_user(
    identity_admin: IdentityAdmin, authentication: Authentication
) -> None:
    bob = await _bob(identity_admin, authentication)
    password, _ = authentication.issue_password(bob)
    await identity_admin.delete_user("bob", force=True)
    with pytest.raises(TokenInvalid):
        await authentication.authenticate_password(password)
    # A new bob is another principal: the old token does not become his.
    await identity_admin.create_user("bob")
    with pytest.raises(TokenInvalid):
        await authentication.authenticate_password(password)


async def test_tampered_and_foreign_tokens(
    identity_admin: IdentityAdmin,
    authentication: Authentication,
    store: MetadataStore,
    now: list[float],
) -> None:
    bob = await _bob(identity_admin, authentication)
    password, _ = authentication.issue_password(bob)
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
            await authentication.authenticate_password(bad)
    # The same claims signed under another key are refused.
    forger = TokenSigner(b"k" * 32)
    forged, _ = forger.issue(
        account_id=bob.account_id,
        principal_arn=bob.arn,
        principal_id=bob.principal_id,
        access_key_id=bob.access_key_id or "",
        now=authentication._now(),
    )
    with pytest.raises(TokenInvalid):
        await authentication.authenticate_password(forged)
    for header in ("Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"bob:" + b"x").decode()):
        with pytest.raises(TokenInvalid):
            await authentication.authenticate_basic(header)


async def test_a_token_needs_an_access_key(authentication: Authentication) -> None:
    root = Principal(account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", principal_id=ACCOUNT)
    with pytest.raises(ValueError, match="access key"):
        authentication.issue_authorization_token(root)
