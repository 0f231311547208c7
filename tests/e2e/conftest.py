"""Fixtures for end-to-end tests: one real cargohold server per module, and the real clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.clients import Podman, Skopeo
from support.fixtures import LiveServers
from support.images import OciLayout
from support.server import RegistryServer


@pytest.fixture(scope="module")
def registry(live_servers: LiveServers) -> RegistryServer:
    """A server that must exit cleanly on SIGTERM when the module ends."""
    return live_servers.start("cargohold")


@pytest.fixture(scope="module")
def http(registry: RegistryServer) -> Iterator[httpx.Client]:
    with registry.client() as client:
        yield client


@pytest.fixture(scope="module")
def skopeo(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return Skopeo(registry, tmp_path_factory.mktemp("skopeo"))


@pytest.fixture(scope="module")
def podman(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Podman:
    return Podman(registry, tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> OciLayout:
    return OciLayout(tmp_path_factory.mktemp("layout") / "oci")
