"""Repository names (ECR's pattern, 2–256 characters) and tags (the OCI tag grammar)."""

from __future__ import annotations

import pytest

from cargohold.domain.errors import NameInvalid, TagInvalid
from cargohold.domain.names import validate_repository_name, validate_tag


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "app",
        "team/app",
        "a/b/c/d",
        "my-app",
        "my--app",
        "my_app",
        "my__app",
        "my.app",
        "0x/1y",
        "a" * 256,
        "/".join(["abc"] * 64)[:255] + "x",
    ],
)
def test_valid_repository_names(name: str) -> None:
    assert validate_repository_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",  # shorter than 2
        "a" * 257,  # longer than 256
        "a" * 300,
        "UPPER",
        "App",
        "../x",
        "x/..",
        "./x",
        "/app",
        "app/",
        "a//b",
        "-app",
        "app-",
        "a___b",  # three underscores are no separator
        "a..b",
        "a b",
        "app:latest",
        "app@sha256",
        "äpp",
        "app\n",
    ],
)
def test_invalid_repository_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        validate_repository_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "1.0-rc_1", "_x", "A" * 128, "0"])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    "tag", ["", "A" * 129, ".hidden", "-dash", "with space", "a/b", "a:b", "ü", "tag\n"]
)
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(TagInvalid):
        validate_tag(tag)
