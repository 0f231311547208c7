"""Image URIs as the agent reads them, and which hosts name this registry."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cargohold.agent.images import ImageRef, Puller, PullError, parse_image, serves

ENDPOINT = "http://127.0.0.1:5000"


def test_parse() -> None:
    assert parse_image("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.0") == ImageRef(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com", "app", "1.0"
    )
    assert parse_image("127.0.0.1:5000/team/app").reference == "latest"
    digest = "sha256:" + "a" * 64
    assert parse_image(f"localhost:5000/app@{digest}").reference == digest


@pytest.mark.parametrize("uri", ["app:1.0", "host.example/App:1", "host.example/app:bad/tag"])
def test_bad_references(uri: str) -> None:
    with pytest.raises(PullError):
        parse_image(uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("127.0.0.1:5000/app:1", True),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1", True),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1", False),
        ("210987654321.localhost:5000/app:1", True),
        ("docker.io/library/busybox:1", False),
        ("127.0.0.1:5001/app:1", False),
    ],
)
def test_the_registry_host_names(uri: str, expected: bool) -> None:
    assert serves(parse_image(uri), ENDPOINT, "us-east-1") is expected


@pytest.mark.parametrize(
    "diff_id", ["../../secret.tar", "/outside/secret.tar", "sha256:../../secret.tar", 7]
)
def test_a_diff_id_names_no_file_outside_the_cache(tmp_path: Path, diff_id: object) -> None:
    """A diff id comes from the image's config and names the layer's file in the cache: one
    that is not a digest must not reach a file elsewhere, which would be taken as the layer
    without a check (and unpacked into the container)."""
    secret = tmp_path / "secret.tar"
    secret.write_bytes(b"host file")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.tar").write_bytes(b"host file")
    cache = tmp_path / "a" / "cache"
    cache.mkdir(parents=True)
    puller = Puller(ENDPOINT, "us-east-1", cache)
    image = parse_image("127.0.0.1:5000/app:1")
    if isinstance(diff_id, str) and diff_id.startswith("/"):
        diff_id = str(tmp_path) + diff_id
    layer = {"digest": "sha256:" + "0" * 64, "mediaType": "application/vnd.oci.image.layer.v1.tar"}
    with httpx.Client(base_url=ENDPOINT) as client, pytest.raises(PullError, match="diff id"):
        puller._layer(client, image, layer, diff_id)  # type: ignore[arg-type]
