"""A live cargohold (a real subprocess) and boto3 IAM and STS clients signed with its
administrator's key."""

from __future__ import annotations

from typing import Any

import pytest

from support.fixtures import LiveServers
from support.server import RegistryServer


@pytest.fixture(scope="module")
def iam_server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("iam-server")


@pytest.fixture(scope="module")
def iam(iam_server: RegistryServer) -> Any:
    return iam_server.iam_client()


@pytest.fixture(scope="module")
def sts(iam_server: RegistryServer) -> Any:
    return iam_server.sts_client()
