"""A live cargohold (a real subprocess) and boto3 IAM and STS clients signed with its
administrator's key."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from support.server import RegistryServer


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    root = tmp_path_factory.mktemp("iam-server")
    server = RegistryServer(root / "data", root / "server.log")
    server.start()
    try:
        yield server
    finally:
        if server.running:
            server.stop()


@pytest.fixture(scope="module")
def iam(iam_server: RegistryServer) -> Any:
    return iam_server.iam_client()


@pytest.fixture(scope="module")
def sts(iam_server: RegistryServer) -> Any:
    return iam_server.sts_client()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the server's log to the report of any test using it that fails."""
    report = yield
    if report.failed:
        server = getattr(item, "funcargs", {}).get("iam_server")
        if isinstance(server, RegistryServer):
            report.sections.append(("cargohold server log (tail)", server.log_tail()))
    return report
