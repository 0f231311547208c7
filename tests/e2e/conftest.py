"""Fixtures for end-to-end tests: one real cargohold server per module, and the real clients."""

from __future__ import annotations

import signal
from collections.abc import Generator, Iterator

import httpx
import pytest

from support.clients import Podman, Skopeo
from support.images import OciLayout
from support.server import RegistryServer


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    base = tmp_path_factory.mktemp("cargohold")
    server = RegistryServer(base / "data", base / "server.log")
    server.start()
    try:
        yield server
    finally:
        if server.running:
            code = server.stop()
            # uvicorn finishes its graceful shutdown, then re-raises the signal it caught.
            if code not in (0, -signal.SIGTERM):
                pytest.fail(
                    f"the server exited with {code} on SIGTERM (expected 0 or -SIGTERM)\n"
                    f"{server.log_tail()}",
                    pytrace=False,
                )


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the server's log to the report of any test using it that fails."""
    report = yield
    if report.failed:
        server = getattr(item, "funcargs", {}).get("registry")
        if isinstance(server, RegistryServer):
            report.sections.append(("cargohold server log (tail)", server.log_tail()))
    return report
