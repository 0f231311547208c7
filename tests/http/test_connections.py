"""The connections `cargohold serve` accepts: a TLS handshake on its plain-HTTP port is logged
with what to do about it, and the connection closed; the port goes on serving HTTP."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from support.fixtures import LiveServers
from support.server import RegistryServer
from support.waiting import wait_until


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("connections")


def test_a_tls_handshake_on_the_plain_port_is_explained(server: RegistryServer) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        pytest.raises((ssl.SSLError, ConnectionError, OSError)),
        context.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass
    wait_until(
        lambda: "TLS handshake from 127.0.0.1" in server.log_tail(),
        timeout=10,
        message=server.log_tail,
    )
    tail = server.log_tail()
    assert "uses https:// but cargohold serves http://" in tail
    assert "--tls-verify=false" in tail and "public_url" in tail
    assert "Invalid HTTP request received" not in tail
    assert httpx.get(f"{server.url}/v2/", timeout=10).status_code == 401
