"""`cargohold gc` against a live server's data directory: `--dry-run` lists and removes
nothing, `--grace 0` removes the blobs of a deleted image (and nothing an image still uses),
the default grace keeps what was just unreferenced, and the images left still pull."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from support.fixtures import LiveServers
from support.server import RegistryServer
from support.v2 import TinyImage, push_image


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("gc-server")


def gc(server: RegistryServer, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "gc", "--data-dir", str(server.data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def blob_files(server: RegistryServer) -> set[str]:
    root = Path(server.data_dir) / "storage" / "blobs"
    return {f"sha256:{p.name}" for p in root.rglob("*") if p.is_file()}


def test_gc(server: RegistryServer) -> None:
    server.create_repository("gc/app")
    kept, gone = TinyImage.make("kept"), TinyImage.make("gone")
    with server.client() as client:
        for tag, image in (("kept", kept), ("gone", gone)):
            assert push_image(client, "gc/app", tag, image).status_code == 201
        assert client.delete(f"/v2/gc/app/manifests/{gone.digest}").status_code == 202
    unreferenced = {gone.layer_digest, "sha256:" + hashlib.sha256(gone.config).hexdigest()}
    # The default grace (the upload expiry and an hour) keeps what was just unreferenced.
    assert gc(server).stdout.splitlines() == [
        "reclaimed: 0 blobs and 0 unrecorded objects, 0 bytes"
    ]
    dry = gc(server, "--dry-run", "--grace", "0").stdout.splitlines()
    assert {line.split("\t")[2] for line in dry[:-1]} == unreferenced
    assert all(line.startswith("would remove\tblob\t") for line in dry[:-1])
    assert dry[-1].startswith("would reclaim: 2 blobs and 0 unrecorded objects, ")
    assert unreferenced <= blob_files(server)
    done = gc(server, "--grace", "0").stdout.splitlines()
    size = len(gone.layer) + len(gone.config)
    assert done[-1] == f"reclaimed: 2 blobs and 0 unrecorded objects, {size} bytes"
    assert not unreferenced & blob_files(server)
    with server.client() as client:
        assert client.get("/v2/gc/app/manifests/kept").status_code == 200
        assert client.get(f"/v2/gc/app/blobs/{kept.layer_digest}").content == kept.layer
        assert client.get(f"/v2/gc/app/blobs/{gone.layer_digest}").status_code == 404
