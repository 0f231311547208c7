"""`scripts/cluster`, the README's "Running a cluster": it brings up SeaweedFS, three nodes on
PostgreSQL and HAProxy; an image pushed with skopeo through it is pulled back by digest; blob
GETs redirect to the store; `down` stops everything it started."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import psycopg
import pytest

from support.clients import Skopeo
from support.images import OciLayout, small_image

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(300)]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cluster"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def free_base() -> int:
    """A port with the 30 after it free, as the script lays its services out from it."""
    for _ in range(50):
        base = 20000 + secrets.randbelow(30000)
        try:
            for port in range(base, base + 30):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free range of 30 ports")


class ScriptCluster:
    def __init__(self, base: int, directory: Path) -> None:
        self.base = base
        self.directory = directory

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.base}"

    def credentials(self) -> dict[str, str]:
        out = subprocess.run(
            [
                *(sys.executable, "-m", "cargohold", "admin", "credentials"),
                *("--config", str(self.directory / "node1.toml")),
                *("--data-dir", str(self.directory / "node1")),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found = {}
        for word in out.split():
            key, sep, value = word.removeprefix("export").partition("=")
            if sep and key.startswith("AWS_"):
                found[key] = value.strip("'\"")
        return found

    def registry_credentials(self) -> tuple[str, str]:
        creds = self.credentials()
        ecr = boto3.client(
            "ecr",
            endpoint_url=f"http://{self.host}",
            region_name="us-east-1",
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        )
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        return ("AWS", base64.b64decode(token).decode().removeprefix("AWS:"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptCluster]:
    schema = f"s_{secrets.token_hex(6)}"
    directory = tmp_path_factory.mktemp("cluster")
    base = free_base()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CARGOHOLD_", "AWS_"))},
        "DATABASE_URL": f"{POSTGRES}?options=-csearch_path%3D{schema}",
        "BASE_PORT": str(base),
        "PYTHON": sys.executable,
    }
    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            up = subprocess.run(
                [str(SCRIPT), "up", str(directory)], env=env, capture_output=True, text=True
            )
            assert up.returncode == 0, up.stdout + up.stderr
            assert f"registry: http://127.0.0.1:{base} (3 nodes" in up.stdout
            yield ScriptCluster(base, directory)
        finally:
            down = subprocess.run(
                [str(SCRIPT), "down", str(directory)], env=env, capture_output=True, text=True
            )
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert down.returncode == 0, down.stderr
    for name in ("haproxy", "node1", "node2", "node3", "weed"):
        assert not (directory / f"{name}.pid").exists()


def test_the_script_serves_one_registry_through_haproxy(
    cluster: ScriptCluster, tmp_path: Path
) -> None:
    for node in (1, 2, 3):
        ready = httpx.get(f"http://127.0.0.1:{cluster.base + node}/health/ready")
        assert ready.json()["status"] == "ready"
    creds = cluster.credentials()
    ecr = boto3.client(
        "ecr",
        endpoint_url=f"http://{cluster.host}",
        region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
    )
    ecr.create_repository(repositoryName="demo/app")
    layout = OciLayout(tmp_path / "image")
    image = small_image(layout, tag="v1")
    skopeo = Skopeo(cluster, tmp_path / "skopeo")  # type: ignore[arg-type]
    skopeo("copy", layout.reference("v1"), f"docker://{cluster.host}/demo/app:v1")
    pulled = OciLayout(tmp_path / "pulled")
    skopeo("copy", f"docker://{cluster.host}/demo/app@{image.digest}", pulled.reference("v1"))
    index = json.loads((pulled.path / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    layer = image.layers[0].descriptor.digest
    blob = httpx.get(
        f"http://{cluster.host}/v2/demo/app/blobs/{layer}", auth=cluster.registry_credentials()
    )
    assert blob.status_code == 307
    stored = httpx.get(blob.headers["location"]).content
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == layer
