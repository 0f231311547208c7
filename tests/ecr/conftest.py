"""A live cargohold (a real subprocess) and boto3 clients signed with its administrator's key."""

from __future__ import annotations

from typing import Any

import pytest

from support.fixtures import LiveServers
from support.server import RegistryServer


@pytest.fixture(scope="module")
def ecr_server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("ecr-server")


@pytest.fixture(scope="module")
def ecr(ecr_server: RegistryServer) -> Any:
    return ecr_server.ecr_client()
