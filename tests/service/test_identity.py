"""Both faces of an account's identities together: what neither may leak (see
tests/service/test_identity_admin.py and tests/service/test_authentication.py for each)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cargohold.metadata.store import MetadataStore
from cargohold.service.identity import Identities

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

ACCOUNT = "123456789012"


@pytest.fixture
def identities(store: MetadataStore, tmp_path: Path, now: list[float]) -> Identities:
    return Identities.from_data_dir(
        store, tmp_path, lambda: now[0], account_id=ACCOUNT, region="us-east-1"
    )


async def test_no_secret_reaches_logs_or_reprs(
    identities: Identities, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await identities.admin.ensure_administrator()
    await identities.admin.create_user("bob")
    created = await identities.admin.create_access_key("bob")
    credential = await identities.authentication.resolve_key(created.key.id)
    password, _ = identities.authentication.issue_password(admin.user.as_principal(admin.key.id))
    texts = [caplog.text, repr(admin), repr(created), repr(credential), repr(identities)]
    for secret in (admin.secret, created.secret, password):
        for text in texts:
            assert secret not in text
    assert created.key.id in caplog.text  # the logging did happen
