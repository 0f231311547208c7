"""The task credentials endpoint: botocore's container provider reads a task's credentials with
its token, any other token gets nothing, and credentials are fetched again before they expire."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from botocore.credentials import ContainerProvider

from cargohold.agent.control import REFRESH_BEFORE, RefreshingCredentials, RoleCredentials
from cargohold.agent.credentials_endpoint import CredentialsEndpoint


def credentials(name: str, lifetime: float) -> RoleCredentials:
    expires = time.time() + lifetime
    return RoleCredentials(
        f"arn:aws:iam::123456789012:role/{name}",
        f"ASIA{name.upper()}",
        f"secret-{name}",
        f"token-{name}",
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
        expires,
    )


@pytest.fixture
def endpoint() -> Iterator[CredentialsEndpoint]:
    served = CredentialsEndpoint()
    served.start()
    try:
        yield served
    finally:
        served.close()


def test_botocore_reads_the_task_credentials(endpoint: CredentialsEndpoint) -> None:
    first = endpoint.add(RefreshingCredentials(lambda: credentials("one", 3600)))
    second = endpoint.add(RefreshingCredentials(lambda: credentials("two", 3600)))
    assert first["AWS_CONTAINER_AUTHORIZATION_TOKEN"] != second["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    found = ContainerProvider(environ=first).load()
    assert found is not None
    frozen = found.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        "ASIAONE",
        "secret-one",
        "token-one",
    )
    url = first["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    assert httpx.get(url, headers={"Authorization": "guess"}).status_code == 401
    assert httpx.get(url).status_code == 401
    endpoint.remove(first)
    token = first["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    assert httpx.get(url, headers={"Authorization": token}).status_code == 401
    assert httpx.get(url.replace("/v1/credentials", "/other")).status_code == 404


def test_credentials_are_fetched_again_before_they_expire() -> None:
    fetched: list[RoleCredentials] = []

    def fetch() -> RoleCredentials:
        fetched.append(
            credentials(f"n{len(fetched)}", REFRESH_BEFORE + 60 if not fetched else 3600)
        )
        return fetched[-1]

    refreshing = RefreshingCredentials(fetch)
    assert refreshing.get().access_key_id == "ASIAN0"
    assert len(fetched) == 1
    # Within REFRESH_BEFORE of its expiry it is replaced; a fresh one is kept.
    refreshing._current = credentials("old", REFRESH_BEFORE - 1)
    assert refreshing.get().access_key_id == "ASIAN1"
    assert refreshing.get().access_key_id == "ASIAN1"
    assert len(fetched) == 2
