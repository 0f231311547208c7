"""Manifest parsing: media-type detection, descriptor rules, artifacts, limits, negotiation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cargohold.domain.digest import Digest
from cargohold.domain.errors import ManifestInvalid
from cargohold.domain.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_BYTES,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    negotiate,
    parse_manifest,
)

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
D1 = str(Digest.of(b"one"))
D2 = str(Digest.of(b"two"))
D3 = str(Digest.of(b"three"))
EMPTY = str(Digest.of(b"{}"))


def desc(media_type: str, digest: str, size: int = 3, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(CONFIG, D1),
        "layers": [desc(LAYER, D2), desc(LAYER, D3, 5)],
        **extra,
    }


def raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def test_oci_image_manifest() -> None:
    parsed = parse_manifest(raw(image()), OCI_MANIFEST)
    assert parsed.media_type == OCI_MANIFEST
    assert not parsed.is_index
    assert parsed.config is not None and str(parsed.config.digest) == D1
    assert [str(d.digest) for d in parsed.blob_references] == [D1, D2, D3]
    assert parsed.children == ()
    assert parsed.subject is None
    assert parsed.effective_artifact_type == CONFIG


def test_oci_index() -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            desc(OCI_MANIFEST, D1, platform={"architecture": "amd64", "os": "linux"}),
            desc(OCI_MANIFEST, D2, platform={"architecture": "arm64", "os": "linux"}),
        ],
    }
    parsed = parse_manifest(raw(document), OCI_INDEX)
    assert parsed.is_index
    assert [str(c.digest) for c in parsed.children] == [D1, D2]
    assert parsed.blob_references == ()
    assert parsed.children[1].platform == {"architecture": "arm64", "os": "linux"}
    assert parsed.effective_artifact_type is None


def test_docker_manifest_and_list() -> None:
    docker = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": desc("application/vnd.docker.container.image.v1+json", D1),
        "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", D2)],
    }
    assert parse_manifest(raw(docker), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    listing = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [desc(DOCKER_MANIFEST, D1)],
    }
    parsed = parse_manifest(raw(listing), DOCKER_MANIFEST_LIST)
    assert parsed.media_type == DOCKER_MANIFEST_LIST and parsed.is_index


def test_docker_list_refuses_a_child_that_is_no_manifest() -> None:
    listing = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [desc(LAYER, D1)],
    }
    with pytest.raises(ManifestInvalid):
        parse_manifest(raw(listing), DOCKER_MANIFEST_LIST)


def test_artifact_with_empty_config_and_subject() -> None:
    document = image(
        artifactType="application/vnd.example.sbom.v1",
        config=desc(OCI_EMPTY, EMPTY, 2),
        subject=desc(OCI_MANIFEST, D3, 100),
        annotations={"org.example": "yes"},
    )
    parsed = parse_manifest(raw(document), OCI_MANIFEST)
    assert parsed.effective_artifact_type == "application/vnd.example.sbom.v1"
    assert parsed.subject is not None and str(parsed.subject.digest) == D3
    assert parsed.annotations == {"org.example": "yes"}


def test_empty_config_needs_an_artifact_type() -> None:
    with pytest.raises(ManifestInvalid, match="artifactType"):
        parse_manifest(raw(image(config=desc(OCI_EMPTY, EMPTY, 2))), OCI_MANIFEST)


def test_artifact_type_from_a_non_image_config() -> None:
    parsed = parse_manifest(raw(image(config=desc("application/vnd.x.config", D1))), None)
    assert parsed.effective_artifact_type == "application/vnd.x.config"


def test_foreign_layers_are_not_required() -> None:
    foreign = desc(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        D3,
        urls=["https://example.com/layer"],
    )
    parsed = parse_manifest(raw(image(layers=[desc(LAYER, D2), foreign])), OCI_MANIFEST)
    assert [str(d.digest) for d in parsed.blob_references] == [D1, D2]


def test_media_type_from_the_body_or_the_shape() -> None:
    assert parse_manifest(raw(image()), None).media_type == OCI_MANIFEST
    no_type = image()
    del no_type["mediaType"]
    assert parse_manifest(raw(no_type), None).media_type == OCI_MANIFEST
    assert parse_manifest(raw(no_type), "application/json").media_type == OCI_MANIFEST
    assert parse_manifest(raw(no_type), OCI_MANIFEST + "; charset=utf-8").media_type == (
        OCI_MANIFEST
    )
    index = {"schemaVersion": 2, "manifests": []}
    assert parse_manifest(raw(index), None).media_type == OCI_INDEX


def test_the_body_and_content_type_must_agree() -> None:
    with pytest.raises(ManifestInvalid, match="does not match"):
        parse_manifest(raw(image()), OCI_INDEX)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"string"',
        raw({"schemaVersion": 1, "config": desc(CONFIG, D1)}),
        raw({**image(), "schemaVersion": "2"}),
        raw({k: v for k, v in image().items() if k != "config"}),
        raw(image(config={"mediaType": CONFIG, "digest": D1})),  # no size
        raw(image(config=desc(CONFIG, D1, -1))),
        raw(image(config=desc(CONFIG, D1, True))),
        raw(image(config=desc(CONFIG, "sha256:nothex"))),
        raw(image(config=desc("", D1))),
        raw(image(config="sha256:abc")),
        raw(image(layers={"not": "a list"})),
        raw(image(layers=[desc(LAYER, D2, urls="http://x")])),
        raw(image(annotations={"a": 1})),
        raw(image(artifactType=7)),
        raw(image(mediaType="application/vnd.unknown+json")),
        raw(image(subject="sha256:abc")),
        raw({"schemaVersion": 2, "mediaType": OCI_INDEX}),  # no manifests
        raw(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": desc(CONFIG, D1),
                "layers": [],
                "subject": desc(OCI_MANIFEST, D2),
            }
        ),
    ],
)
def test_malformed_manifests(body: bytes) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(body, None)


def test_unknown_content_type_without_a_body_type() -> None:
    no_type = image()
    del no_type["mediaType"]
    with pytest.raises(ManifestInvalid, match="unsupported"):
        parse_manifest(raw(no_type), "text/plain")


def test_size_limit_is_four_mebibytes() -> None:
    base = raw(image(annotations={"pad": ""}))
    padded = raw(image(annotations={"pad": "x" * (MAX_MANIFEST_BYTES - len(base))}))
    assert len(padded) == MAX_MANIFEST_BYTES
    parse_manifest(padded, OCI_MANIFEST)
    over = raw(image(annotations={"pad": "x" * (MAX_MANIFEST_BYTES - len(base) + 1)}))
    with pytest.raises(ManifestInvalid, match="larger"):
        parse_manifest(over, OCI_MANIFEST)


@pytest.mark.parametrize(
    ("media_type", "accept", "expected"),
    [
        (OCI_MANIFEST, [], True),
        (OCI_MANIFEST, ["*/*"], True),
        (OCI_MANIFEST, ["application/*"], True),
        (OCI_MANIFEST, [OCI_MANIFEST], True),
        (OCI_MANIFEST, [f"{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.5"], True),
        (OCI_MANIFEST, [DOCKER_MANIFEST, OCI_INDEX], False),
        (OCI_MANIFEST, [DOCKER_MANIFEST], False),
        (OCI_INDEX, [OCI_MANIFEST], False),
        (OCI_INDEX, [OCI_MANIFEST, OCI_INDEX.upper()], True),
        (DOCKER_MANIFEST_LIST, [DOCKER_MANIFEST], False),
    ],
)
def test_negotiate(media_type: str, accept: list[str], expected: bool) -> None:
    assert negotiate(media_type, accept) is expected
