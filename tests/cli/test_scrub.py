"""`cargohold scrub` against a live server's data directory: a clean store exits 0; a
corrupted blob is reported with the image it breaks, exits 1, and the server answers its GET
with BLOB_UNKNOWN from then on; `--repair` says there is no replica to restore it from."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from support.fixtures import LiveServers
from support.server import RegistryServer
from support.v2 import TinyImage, push_image
from support.waiting import wait_until


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("scrub-server")


def scrub(server: RegistryServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", "scrub", "--data-dir", str(server.data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_scrub(server: RegistryServer) -> None:
    server.create_repository("scrub/app")
    image = TinyImage.make("scrubbed")
    with server.client() as client:
        assert push_image(client, "scrub/app", "v1", image).status_code == 201
        assert client.get(f"/v2/scrub/app/blobs/{image.layer_digest}").status_code == 200
    clean = scrub(server)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.splitlines()[-1].endswith("checked: 0 damaged")
    hex_digest = image.layer_digest.removeprefix("sha256:")
    path = Path(server.data_dir) / "storage" / "blobs" / "sha256" / hex_digest[:2] / hex_digest
    path.write_bytes(b"rot" + path.read_bytes()[3:])
    damaged = scrub(server, "scrub/app", "--repair")
    assert damaged.returncode == 1, damaged.stderr
    lines = damaged.stdout.splitlines()
    manifest_digest = "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    assert lines[0] == (
        f"corrupted\t{image.layer_digest}\tquarantined\timages: scrub/app@{manifest_digest}"
    )
    assert "no replica" in lines[1]
    assert lines[-1].endswith("checked: 1 damaged")
    assert "scrub" in damaged.stderr  # the progress bar

    def unknown() -> bool:
        with server.client() as client:
            answer = client.get(f"/v2/scrub/app/blobs/{image.layer_digest}")
        return answer.status_code == 404 and answer.json()["errors"][0]["code"] == "BLOB_UNKNOWN"

    wait_until(unknown, timeout=10, interval=0.2, message="the corrupted blob is still served")
    missing = scrub(server, "scrub/none-such")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
