"""`serve --workers N`: several processes share the port and the store."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from support.clients import Skopeo
from support.fixtures import LiveServers
from support.images import OciLayout, small_image
from support.server import RegistryServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def registry(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("workers", extra_args=("--workers", "2"))


def test_two_workers_serve_pushes_and_pulls(
    registry: RegistryServer, skopeo: Skopeo, layout: OciLayout, tmp_path: Path
) -> None:
    workers = [
        p for p in psutil.Process(registry.pid).children(recursive=True) if "python" in p.name()
    ]
    assert len(workers) >= 2, "serve --workers 2 should run two server processes"
    image = small_image(layout, tag="w", seed=5)
    for n in range(4):
        registry.create_repository(f"workers/app{n}")
        skopeo(
            "copy", "--preserve-digests", layout.reference("w"), skopeo.ref(f"workers/app{n}", "1")
        )
    with registry.client() as client:
        for n in range(4):
            response = client.get(
                f"/v2/workers/app{n}/manifests/1",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert response.status_code == 200
            assert response.headers["Docker-Content-Digest"] == image.digest
