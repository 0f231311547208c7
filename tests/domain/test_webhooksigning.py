"""Webhook signatures: what is signed, and what a receiver refuses."""

from __future__ import annotations

import hashlib
import hmac

from cargohold.domain.webhooksigning import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signed_headers,
    verify,
)

SECRET = b"hook-secret"
BODY = b'{"detail-type":"ECR Image Action"}'
NOW = 1_765_000_000


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body() -> None:
    expected = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == f"sha256={expected}"
    headers = signed_headers(SECRET, NOW, BODY)
    assert headers == {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"sha256={expected}"}


def test_a_receiver_accepts_what_was_signed() -> None:
    headers = signed_headers(SECRET, NOW, BODY)
    assert verify(SECRET, headers, BODY, NOW + 10)
    lower = {name.lower(): value for name, value in headers.items()}
    assert verify(SECRET, lower, BODY, NOW)


def test_a_receiver_refuses_anything_else() -> None:
    headers = signed_headers(SECRET, NOW, BODY)
    assert not verify(b"other", headers, BODY, NOW)
    assert not verify(SECRET, headers, BODY + b" ", NOW)
    assert not verify(SECRET, headers, BODY, NOW + 301)  # a replay, later
    assert not verify(SECRET, headers, BODY, NOW - 301)
    assert verify(SECRET, headers, BODY, NOW + 1000, tolerance=2000)
    moved = {**headers, TIMESTAMP_HEADER: str(NOW + 1)}  # the timestamp is signed too
    assert not verify(SECRET, moved, BODY, NOW)
    assert not verify(SECRET, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, BODY, NOW)
    assert not verify(SECRET, {**headers, TIMESTAMP_HEADER: "-5"}, BODY, NOW)
    assert not verify(SECRET, {**headers, TIMESTAMP_HEADER: "١٢"}, BODY, NOW)
