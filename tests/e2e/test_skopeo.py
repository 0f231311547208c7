"""skopeo against cargohold: images, Docker media types, indexes, tags, deletion and referrers.

Every check compares digests and bytes with the layout the test built, never just exit codes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.clients import Skopeo, error_codes, get_manifest, push_blob, push_manifest
from support.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    EMPTY_DIGEST,
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    REF_NAME,
    Descriptor,
    Image,
    OciLayout,
    artifact_manifest,
    multi_platform_index,
    sha256_digest,
    small_image,
)
from support.server import RegistryServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def inspect_raw(skopeo: Skopeo, name: str, reference: str) -> bytes:
    return skopeo("inspect", "--raw", skopeo.ref(name, reference)).stdout.encode()


def layout_ref(layout_dir: Path, tag: str) -> dict[str, Any]:
    """The descriptor that `tag` names in a layout's index.json."""
    index = json.loads((layout_dir / "index.json").read_bytes())
    for descriptor in index["manifests"]:
        if descriptor.get("annotations", {}).get(REF_NAME) == tag:
            return dict(descriptor)
    raise AssertionError(f"{tag} is not in {layout_dir}/index.json: {index}")


def layout_blob(layout_dir: Path, digest: str) -> bytes:
    algorithm, _, hexdigest = digest.partition(":")
    return (layout_dir / "blobs" / algorithm / hexdigest).read_bytes()


def assert_blobs_served(http: httpx.Client, name: str, layout: OciLayout, image: Image) -> None:
    """Each blob of `image` comes back from the registry byte for byte, with its digest header."""
    for digest in image.blob_digests:
        response = http.get(f"/v2/{name}/blobs/{digest}")
        assert response.status_code == 200, (digest, response.status_code, response.text)
        assert response.headers["Docker-Content-Digest"] == digest
        assert sha256_digest(response.content) == digest
        assert response.content == layout.read_blob(digest)


def test_oci_image_round_trips_with_identical_digests(
    registry: RegistryServer,
    skopeo: Skopeo,
    http: httpx.Client,
    layout: OciLayout,
    tmp_path: Path,
) -> None:
    """An OCI image goes in and comes out unchanged: manifest, config and layers, byte for byte."""
    image = small_image(layout, tag="oci", seed=1)
    name = "e2e/skopeo-oci"
    registry.create_repository(name)

    skopeo("copy", "--preserve-digests", layout.reference("oci"), skopeo.ref(name, "v1"))

    assert inspect_raw(skopeo, name, "v1") == image.manifest
    assert inspect_raw(skopeo, name, image.digest) == image.manifest
    response = get_manifest(http, name, "v1")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.content == image.manifest
    assert_blobs_served(http, name, layout, image)

    out = tmp_path / "out"
    skopeo("copy", "--preserve-digests", skopeo.ref(name, "v1"), f"oci:{out}:back")
    descriptor = layout_ref(out, "back")
    assert descriptor["digest"] == image.digest
    assert descriptor["size"] == len(image.manifest)
    assert layout_blob(out, image.digest) == image.manifest
    for digest in image.blob_digests:
        assert layout_blob(out, digest) == layout.read_blob(digest)


def test_docker_schema2_round_trips(
    registry: RegistryServer,
    skopeo: Skopeo,
    http: httpx.Client,
    layout: OciLayout,
    tmp_path: Path,
) -> None:
    """`--format v2s2` stores a Docker manifest, served as such, with the original blobs."""
    image = small_image(layout, tag="docker", seed=2)
    name = "e2e/skopeo-docker"
    registry.create_repository(name)

    skopeo("copy", "--format", "v2s2", layout.reference("docker"), skopeo.ref(name, "v1"))

    raw = inspect_raw(skopeo, name, "v1")
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert manifest["config"]["digest"] == image.config.digest
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER_GZIP] * 2
    assert [layer["digest"] for layer in manifest["layers"]] == [
        layer.descriptor.digest for layer in image.layers
    ]

    response = http.get(f"/v2/{name}/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.content == raw
    assert response.headers["Docker-Content-Digest"] == sha256_digest(raw)
    assert_blobs_served(http, name, layout, image)

    # The dir: transport keeps the manifest exactly as the registry served it.
    out = tmp_path / "dir"
    skopeo("copy", skopeo.ref(name, "v1"), f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == raw
    for digest in image.blob_digests:
        assert (out / digest.partition(":")[2]).read_bytes() == layout.read_blob(digest)


def test_multi_platform_index_round_trips(
    registry: RegistryServer,
    skopeo: Skopeo,
    http: httpx.Client,
    layout: OciLayout,
    tmp_path: Path,
) -> None:
    """`copy --all` of an amd64+arm64 index keeps the index digest and both children."""
    index = multi_platform_index(layout, tag="multi", seed=3)
    name = "e2e/skopeo-index"
    registry.create_repository(name)

    skopeo("copy", "--all", "--preserve-digests", layout.reference("multi"), skopeo.ref(name, "v1"))

    assert inspect_raw(skopeo, name, "v1") == index.manifest
    response = get_manifest(http, name, "v1")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert response.headers["Docker-Content-Digest"] == index.digest
    platforms = [
        (child["platform"]["os"], child["platform"]["architecture"])
        for child in response.json()["manifests"]
    ]
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]
    for child in index.children:
        assert inspect_raw(skopeo, name, child.digest) == child.manifest
        assert_blobs_served(http, name, layout, child)

    out = tmp_path / "out"
    skopeo("copy", "--all", "--preserve-digests", skopeo.ref(name, "v1"), f"oci:{out}:back")
    assert layout_ref(out, "back")["digest"] == index.digest
    assert layout_blob(out, index.digest) == index.manifest
    for child in index.children:
        assert layout_blob(out, child.digest) == child.manifest
        for digest in child.blob_digests:
            assert layout_blob(out, digest) == layout.read_blob(digest)


def test_docker_manifest_list_round_trips(
    registry: RegistryServer,
    skopeo: Skopeo,
    http: httpx.Client,
    layout: OciLayout,
    tmp_path: Path,
) -> None:
    """`--all --format v2s2` stores a Docker manifest list; its children keep their blobs."""
    index = multi_platform_index(layout, tag="docker-list", seed=8)
    name = "e2e/skopeo-docker-list"
    registry.create_repository(name)

    skopeo(
        "copy", "--all", "--format", "v2s2", layout.reference("docker-list"), skopeo.ref(name, "v1")
    )

    raw = inspect_raw(skopeo, name, "v1")
    manifest_list = json.loads(raw)
    assert manifest_list["mediaType"] == DOCKER_MANIFEST_LIST
    response = http.get(f"/v2/{name}/manifests/v1", headers={"Accept": DOCKER_MANIFEST_LIST})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == DOCKER_MANIFEST_LIST
    assert response.headers["Docker-Content-Digest"] == sha256_digest(raw)
    assert response.content == raw
    children = manifest_list["manifests"]
    assert [child["platform"]["architecture"] for child in children] == ["amd64", "arm64"]
    for entry, image in zip(children, index.children, strict=True):
        assert entry["mediaType"] == DOCKER_MANIFEST
        child_raw = inspect_raw(skopeo, name, entry["digest"])
        assert sha256_digest(child_raw) == entry["digest"]
        assert len(child_raw) == entry["size"]
        child = json.loads(child_raw)
        assert child["mediaType"] == DOCKER_MANIFEST
        assert child["config"]["digest"] == image.config.digest
        assert [layer["digest"] for layer in child["layers"]] == [
            layer.descriptor.digest for layer in image.layers
        ]
        head = http.head(
            f"/v2/{name}/manifests/{entry['digest']}", headers={"Accept": DOCKER_MANIFEST}
        )
        assert head.status_code == 200
        assert head.headers["Content-Type"] == DOCKER_MANIFEST
        assert int(head.headers["Content-Length"]) == entry["size"]
        assert_blobs_served(http, name, layout, image)

    out = tmp_path / "dir"
    skopeo("copy", "--all", skopeo.ref(name, "v1"), f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == raw


def test_list_tags(
    registry: RegistryServer, skopeo: Skopeo, http: httpx.Client, layout: OciLayout
) -> None:
    """skopeo list-tags sees every pushed tag; `n` pages them in lexical order with `Link`."""
    small_image(layout, tag="tags", seed=4)
    name = "e2e/skopeo-tags"
    registry.create_repository(name)
    tags = ["1.0", "1.1", "latest"]
    for tag in tags:
        skopeo("copy", "--preserve-digests", layout.reference("tags"), skopeo.ref(name, tag))

    listed = json.loads(skopeo("list-tags", f"docker://{registry.host}/{name}").stdout)
    assert sorted(listed["Tags"]) == tags

    first = http.get(f"/v2/{name}/tags/list", params={"n": 2})
    assert first.status_code == 200
    assert first.json() == {"name": name, "tags": ["1.0", "1.1"]}
    link = first.headers.get("Link", "")
    assert 'rel="next"' in link, first.headers
    next_url = link.split(";")[0].strip().strip("<>")
    second = http.get(next_url)
    assert second.status_code == 200
    assert second.json() == {"name": name, "tags": ["latest"]}


def test_delete_tag_then_manifest(
    registry: RegistryServer, skopeo: Skopeo, http: httpx.Client, layout: OciLayout
) -> None:
    """Deleting a tag leaves the manifest; `skopeo delete` removes it, and then it is a 404."""
    image = small_image(layout, tag="delete", seed=5)
    name = "e2e/skopeo-delete"
    registry.create_repository(name)
    for tag in ("a", "b"):
        skopeo("copy", "--preserve-digests", layout.reference("delete"), skopeo.ref(name, tag))

    deleted_tag = http.delete(f"/v2/{name}/manifests/a")
    assert deleted_tag.status_code == 202, deleted_tag.text
    gone = get_manifest(http, name, "a")
    assert gone.status_code == 404
    assert error_codes(gone) == ["MANIFEST_UNKNOWN"]
    assert get_manifest(http, name, "b").headers["Docker-Content-Digest"] == image.digest
    assert get_manifest(http, name, image.digest).status_code == 200

    skopeo("delete", skopeo.ref(name, "b"))

    for reference in ("b", image.digest):
        response = get_manifest(http, name, reference)
        assert response.status_code == 404, (reference, response.text)
        assert error_codes(response) == ["MANIFEST_UNKNOWN"]
        head = http.head(f"/v2/{name}/manifests/{reference}")
        assert head.status_code == 404
    failed = skopeo("inspect", "--raw", skopeo.ref(name, "b"), check=False)
    assert failed.returncode != 0
    tags = http.get(f"/v2/{name}/tags/list")
    if tags.status_code == 200:
        assert not {"a", "b"} & set(tags.json().get("tags") or [])
    else:
        assert tags.status_code == 404
        assert error_codes(tags) == ["NAME_UNKNOWN"]


def _push_artifact(
    http: httpx.Client,
    name: str,
    subject: Descriptor,
    artifact_type: str,
    payload: bytes,
    payload_type: str,
) -> tuple[str, bytes]:
    push_blob(http, name, EMPTY_JSON)
    layer = Descriptor(payload_type, push_blob(http, name, payload), len(payload))
    body = artifact_manifest(
        artifact_type=artifact_type,
        subject=subject,
        layers=[layer],
        annotations={"org.opencontainers.image.description": artifact_type},
    )
    digest = sha256_digest(body)
    response = push_manifest(http, name, digest, body, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers.get("OCI-Subject") == subject.digest
    return digest, body


def test_artifact_found_through_referrers(
    registry: RegistryServer, skopeo: Skopeo, http: httpx.Client, layout: OciLayout
) -> None:
    """Artifacts with a `subject` are listed by the referrers API, filterable by `artifactType`."""
    assert sha256_digest(EMPTY_JSON) == EMPTY_DIGEST
    image = small_image(layout, tag="subject", seed=6)
    name = "e2e/skopeo-referrers"
    registry.create_repository(name)
    skopeo("copy", "--preserve-digests", layout.reference("subject"), skopeo.ref(name, "v1"))
    subject = Descriptor(OCI_MANIFEST, image.digest, len(image.manifest))

    sbom_type, signature_type = "application/vnd.example.sbom.v1", "application/vnd.example.sig.v1"
    sbom, sbom_body = _push_artifact(
        http, name, subject, sbom_type, b'{"spdxVersion":"SPDX-2.3"}', "application/spdx+json"
    )
    signature, _ = _push_artifact(
        http, name, subject, signature_type, b"signed", "application/octet-stream"
    )
    assert get_manifest(http, name, sbom).content == sbom_body

    response = http.get(f"/v2/{name}/referrers/{image.digest}")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    referrers = response.json()
    assert referrers["schemaVersion"] == 2
    assert referrers["mediaType"] == OCI_INDEX
    by_digest = {descriptor["digest"]: descriptor for descriptor in referrers["manifests"]}
    assert set(by_digest) == {sbom, signature}
    expected = {
        "mediaType": OCI_MANIFEST,
        "digest": sbom,
        "size": len(sbom_body),
        "artifactType": sbom_type,
        "annotations": {"org.opencontainers.image.description": sbom_type},
    }
    assert {key: by_digest[sbom].get(key) for key in expected} == expected
    assert by_digest[signature]["artifactType"] == signature_type

    filtered = http.get(f"/v2/{name}/referrers/{image.digest}", params={"artifactType": sbom_type})
    assert filtered.status_code == 200
    assert filtered.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [descriptor["digest"] for descriptor in filtered.json()["manifests"]] == [sbom]

    none = http.get(f"/v2/{name}/referrers/{sbom}")
    assert none.status_code == 200
    assert none.headers["Content-Type"] == OCI_INDEX
    assert none.json()["manifests"] == []
