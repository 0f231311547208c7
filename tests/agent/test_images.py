"""Image URIs as the agent reads them, and which hosts name this registry."""

from __future__ import annotations

import pytest

from cargohold.agent.images import ImageRef, PullError, parse_image, serves

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
