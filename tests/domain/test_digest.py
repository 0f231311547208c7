"""Digests: the `algorithm:hex` grammar, the registered algorithms, and hashing content."""

from __future__ import annotations

import hashlib

import pytest

from cargohold.domain.digest import Digest, is_digest
from cargohold.domain.errors import DigestInvalid

SHA256_EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_sha256() -> None:
    digest = Digest.parse(SHA256_EMPTY)
    assert digest.algorithm == "sha256"
    assert digest.hex == SHA256_EMPTY.partition(":")[2]
    assert str(digest) == SHA256_EMPTY


def test_parse_sha512() -> None:
    text = "sha512:" + hashlib.sha512(b"x").hexdigest()
    digest = Digest.parse(text)
    assert (digest.algorithm, str(digest)) == ("sha512", text)


def test_of_hashes_with_the_requested_algorithm() -> None:
    assert str(Digest.of(b"")) == SHA256_EMPTY
    assert Digest.of(b"abc", "sha512").hex == hashlib.sha512(b"abc").hexdigest()


def test_equality_and_order_follow_the_text() -> None:
    a, b = Digest.of(b"a"), Digest.of(b"b")
    assert Digest.parse(str(a)) == a
    assert a != b
    assert sorted([b, a]) == sorted([a, b])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        ":" + "a" * 64,
        "sha256:" + "a" * 63,  # too short
        "sha256:" + "a" * 65,  # too long
        "sha256:" + "A" * 64,  # upper-case hex is not the canonical encoding
        "sha256:" + "g" * 64,  # not hex
        "sha512:" + "a" * 64,  # the sha256 length under sha512
        "md5:" + "a" * 32,  # unregistered algorithm
        "sha384:" + "a" * 96,  # grammatical but not supported
        "SHA256:" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",
        "sha256:../../" + "a" * 58,
        "sha256:" + "a" * 300,
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(DigestInvalid):
        Digest.parse(text)


def test_is_digest_tells_tags_from_digests() -> None:
    assert is_digest(SHA256_EMPTY)
    assert not is_digest("latest")
    assert not is_digest("v1.2.3-rc_1")
