"""A live cargohold serving ECS, and boto3 clients of its administrator."""

from __future__ import annotations

from typing import Any

import pytest

from support.fixtures import LiveServers
from support.server import RegistryServer


@pytest.fixture(scope="module")
def ecs_server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("ecs-server")


@pytest.fixture(scope="module")
def ecs(ecs_server: RegistryServer) -> Any:
    return ecs_server.aws_client("ecs")


@pytest.fixture(scope="module")
def iam(ecs_server: RegistryServer) -> Any:
    return ecs_server.iam_client()
