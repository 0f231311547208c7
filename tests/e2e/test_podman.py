"""podman (vfs storage, no containers run) pulls from, tags into, and pushes to cargohold."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest

from support.clients import ACCEPT_MANIFESTS, Podman, Skopeo
from support.images import DOCKER_MANIFEST, OciLayout, sha256_digest, small_image, tar_bytes
from support.server import RegistryServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def manifest_json(skopeo: Skopeo, name: str, reference: str) -> dict[str, object]:
    manifest: dict[str, object] = json.loads(
        skopeo("inspect", "--raw", skopeo.ref(name, reference)).stdout
    )
    return manifest


def layer_digests(manifest: dict[str, object]) -> list[str]:
    layers = manifest["layers"]
    assert isinstance(layers, list)
    return [str(layer["digest"]) for layer in layers]


def config_digest(manifest: dict[str, object]) -> str:
    config = manifest["config"]
    assert isinstance(config, dict)
    return str(config["digest"])


def test_podman_pulls_tags_and_pushes(
    registry: RegistryServer, skopeo: Skopeo, podman: Podman, layout: OciLayout
) -> None:
    """podman pulls what skopeo pushed, and pushes it under a new name with the same layers.

    podman reuses the layers by a cross-repository mount, which ECR performs only with the
    BLOB_MOUNTING account setting enabled; without it podman would upload (and recompress) them.
    """
    registry.ecr_client().put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    image = small_image(layout, tag="podman", seed=11)
    source, copy = "e2e/podman-source", "e2e/podman-copy"
    registry.create_repository(source)
    registry.create_repository(copy)
    skopeo("copy", "--preserve-digests", layout.reference("podman"), skopeo.ref(source, "1.0"))

    podman("pull", podman.ref(source, "1.0"))
    pulled = podman("image", "inspect", "--format", "{{.Digest}}", podman.ref(source, "1.0"))
    assert pulled.stdout.strip() == image.digest

    podman("tag", podman.ref(source, "1.0"), podman.ref(copy, "2.0"))
    podman("push", podman.ref(copy, "2.0"))

    pushed = manifest_json(skopeo, copy, "2.0")
    assert layer_digests(pushed) == [layer.descriptor.digest for layer in image.layers]
    assert config_digest(pushed) == image.config.digest
    # The source is untouched by the push of its copy, and pulls by digest too.
    assert manifest_json(skopeo, source, "1.0") == json.loads(image.manifest)
    by_digest = f"{registry.host}/{source}@{image.digest}"
    podman("pull", by_digest)
    assert (
        podman("image", "inspect", "--format", "{{.Id}}", by_digest).stdout.strip()
        == (image.config.digest.partition(":")[2])
    )

    # Pushed again in Docker's media types: a Docker manifest with the same config and layers.
    podman("push", "--format", "v2s2", podman.ref(copy, "2.0"), podman.ref(copy, "docker"))
    docker = manifest_json(skopeo, copy, "docker")
    assert docker["mediaType"] == DOCKER_MANIFEST
    assert layer_digests(docker) == [layer.descriptor.digest for layer in image.layers]
    assert config_digest(docker) == image.config.digest


def test_podman_pushes_an_imported_image(
    registry: RegistryServer, skopeo: Skopeo, podman: Podman, http: httpx.Client, tmp_path: Path
) -> None:
    """An image podman made locally (`podman import` of a Python-made tar) is pushed intact."""
    tar = tar_bytes(
        {
            "etc/motd": b"built by podman import\n",
            "srv/index.html": b"<h1>cargohold</h1>\n",
        }
    )
    tar_path = tmp_path / "rootfs.tar"
    tar_path.write_bytes(tar)
    name = "e2e/podman-imported"
    registry.create_repository(name)

    podman("import", str(tar_path), "localhost/e2e-imported:1")
    podman("tag", "localhost/e2e-imported:1", podman.ref(name, "1"))
    podman("push", podman.ref(name, "1"))

    manifest = manifest_json(skopeo, name, "1")
    [layer_digest] = layer_digests(manifest)
    config = http.get(f"/v2/{name}/blobs/{config_digest(manifest)}")
    assert config.status_code == 200
    assert sha256_digest(config.content) == config_digest(manifest)
    assert config.json()["rootfs"]["diff_ids"] == [sha256_digest(tar)]

    layer = http.get(f"/v2/{name}/blobs/{layer_digest}")
    assert layer.status_code == 200
    assert sha256_digest(layer.content) == layer_digest
    assert gzip.decompress(layer.content) == tar

    # And it pulls back into a clean store with the digest the registry reported.
    head = http.head(f"/v2/{name}/manifests/1", headers={"Accept": ACCEPT_MANIFESTS})
    assert head.status_code == 200
    podman("rmi", "--all", "--force")
    podman("pull", podman.ref(name, "1"))
    pulled = podman("image", "inspect", "--format", "{{.Digest}}", podman.ref(name, "1"))
    assert pulled.stdout.strip() == head.headers["Docker-Content-Digest"]
