"""The identity service as a whole: what neither of its faces may leak (see
tests/service/test_identity_admin.py and tests/service/test_authentication.py for each)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cargohold.metadata.store import MetadataStore
from cargohold.service.identity import IdentityService

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

ACCOUNT = "123456789012"


@pytest.fixture
def identity(store: MetadataStore, tmp_path: Path, now: list[float]) -> IdentityService:
    return IdentityService.from_data_dir(
        store, tmp_path, lambda: now[0], account_id=ACCOUNT, region="us-east-1"
    )


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
