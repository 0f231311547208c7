"""`cargohold kubelet-credential-provider` fed the JSON the kubelet sends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cargohold.kubelet_provider import go_duration
from support.busybox import BusyboxImage
from support.fixtures import LiveServers
from support.server import RegistryServer
from test_credential_helper import helper_env


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    found = live_servers.start("kubelet-provider-server")
    found.create_repository("busybox")
    with found.client() as client:
        BusyboxImage.make().push(client, "busybox", "1.0")
    return found


def provide(env: dict[str, str], request: dict[str, object]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", "kubelet-credential-provider"],
        input=json.dumps(request),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_response_the_kubelet_reads(server: RegistryServer, tmp_path: Path) -> None:
    env = helper_env(server, tmp_path)
    request = {
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": f"{server.host}/busybox:1.0",
    }
    found = provide(env, request)
    assert found.returncode == 0, found.stderr
    response = json.loads(found.stdout)
    assert response["apiVersion"] == "credentialprovider.kubelet.k8s.io/v1"
    assert response["kind"] == "CredentialProviderResponse"
    assert response["cacheKeyType"] == "Registry"
    # A 12-hour token, given up 15 minutes before it expires.
    assert response["cacheDuration"] in ("11h44m59s", "11h45m0s")
    auth = response["auth"][server.host]
    pulled = httpx.get(
        f"{server.url}/v2/busybox/manifests/1.0",
        auth=(auth["username"], auth["password"]),
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert pulled.status_code == 200


def test_a_request_that_is_not_one(server: RegistryServer, tmp_path: Path) -> None:
    env = helper_env(server, tmp_path)
    found = provide(env, {"apiVersion": "v1", "kind": "Pod"})
    assert found.returncode == 1
    assert "not a CredentialProviderRequest" in found.stderr


def test_go_durations() -> None:
    assert go_duration(42300) == "11h45m0s"
    assert go_duration(61) == "1m1s"
    assert go_duration(-5) == "0s"
