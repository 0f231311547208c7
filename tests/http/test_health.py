"""`/health/live`, `/health/ready` and the 503 every front answers while the database cannot be
reached: a real server on PostgreSQL through a TCP forwarder that the test cuts and restores."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from botocore.exceptions import ClientError

from support.seaweed import write_config
from support.server import RegistryServer
from support.tcpproxy import TcpProxy
from support.waiting import wait_until

pytestmark = pytest.mark.postgres

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    forwarder = TcpProxy("127.0.0.1", 5432)
    forwarder.start()
    try:
        yield forwarder
    finally:
        forwarder.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, proxy: TcpProxy) -> Iterator[RegistryServer]:
    schema = f"h_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        root = tmp_path_factory.mktemp("health")
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{schema}"
        config = write_config(root / "cargohold.toml", {"driver": "filesystem"}, database_url=url)
        node = RegistryServer(root / "data", root / "log", extra_args=("--config", str(config)))
        node.start()
        try:
            yield node
        finally:
            node.stop()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_live_and_ready_while_everything_answers(server: RegistryServer) -> None:
    live = httpx.get(f"{server.url}/health/live")
    assert live.status_code == 200 and live.json() == {"status": "live"}
    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "storage": "ok"}
    assert httpx.post(f"{server.url}/health/ready").status_code == 405


def test_the_database_cut_off_answers_503_with_retry_after(
    server: RegistryServer, proxy: TcpProxy
) -> None:
    server.create_repository("before")
    ecr = server.aws_client("ecr")
    password = server.login_password()
    proxy.stop()
    try:
        ready = httpx.get(f"{server.url}/health/ready", timeout=30)
        assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
        assert ready.json() == {"status": "unavailable", "database": "unavailable", "storage": "ok"}
        assert httpx.get(f"{server.url}/health/live").status_code == 200

        manifest = httpx.get(
            f"{server.url}/v2/nowhere/manifests/latest", auth=("AWS", password), timeout=30
        )
        assert manifest.status_code == 503, manifest.text
        assert manifest.headers["retry-after"] == "5"
        [error] = manifest.json()["errors"]
        assert error["code"] == "UNAVAILABLE"
        assert "database" in error["message"] and "5432" not in error["message"]

        with pytest.raises(ClientError) as caught:
            ecr.describe_repositories()
        answer = caught.value.response
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert answer["Error"]["Code"] == "ServiceUnavailableException"
        assert answer["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "5"
    finally:
        proxy.start()

    def ready_again() -> bool:
        return httpx.get(f"{server.url}/health/ready", timeout=30).status_code == 200

    wait_until(ready_again, timeout=30, interval=0.2)
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert names == ["before"]
