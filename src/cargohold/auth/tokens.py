"""The ``/v2/`` registry token that ECR's GetAuthorizationToken hands out.

GetAuthorizationToken returns ``authorizationToken = base64("AWS:" + password)`` valid for 12
hours; ``podman login`` / ``docker login`` then send ``Authorization: Basic base64("AWS:" +
password)`` on every ``/v2/`` request. This module owns that password: a self-contained,
tamper-proof token that names the caller it was issued to, and the parsing of the Basic header
that carries it.

A password is ``v1.<payload>.<mac>``: the payload is compact JSON (account id, principal ARN and
id, the access key id that asked for it, an optional STS session id, issued-at and expires-at in
epoch seconds), base64url without padding; the MAC is HMAC-SHA256 over ``v1.<payload>`` under a
key used for nothing else (see `cargohold.auth.secretbox.SecretBox.derive_key`). It carries no
secret. Verifying proves only that cargohold issued it and it has not expired; the caller must
still check that the access key (or session) it names is active, which is how deactivating or
deleting a key revokes its tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from cargohold.auth.errors import TokenExpired, TokenInvalid

__all__ = [
    "REGISTRY_USERNAME",
    "TOKEN_LIFETIME",
    "TokenClaims",
    "TokenSigner",
    "encode_authorization_token",
    "parse_basic_authorization",
]

REGISTRY_USERNAME = "AWS"
TOKEN_LIFETIME = timedelta(hours=12)

_VERSION = "v1"
_MIN_KEY_BYTES = 32
# Far above any real token (a few hundred bytes); refuse to decode or MAC anything bigger.
_MAX_PASSWORD_CHARS = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class TokenClaims:
    """Who a registry token was issued to, and for how long.

    ``session_token_id`` identifies the STS session when an assumed role asked for the token, so
    ending the session can end the token too.
    """

    account_id: str
    principal_arn: str
    principal_id: str
    access_key_id: str
    session_token_id: str | None
    issued_at: datetime
    expires_at: datetime


class TokenSigner:
    """Issues and verifies registry tokens under one HMAC key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"token signing key must be at least {_MIN_KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "TokenSigner(<key hidden>)"

    def issue(
        self,
        *,
        account_id: str,
        principal_arn: str,
        principal_id: str,
        access_key_id: str,
        session_token_id: str | None = None,
        now: datetime,
        lifetime: timedelta = TOKEN_LIFETIME,
    ) -> tuple[str, datetime]:
        """Return ``(password, expires_at)``. Times are whole seconds, UTC."""
        if lifetime <= timedelta(0):
            raise ValueError("lifetime must be positive")
        issued = int(_as_utc(now).timestamp())
        expires = issued + int(lifetime.total_seconds())
        claims: dict[str, Any] = {
            "a": account_id,
            "r": principal_arn,
            "p": principal_id,
            "k": access_key_id,
            "i": issued,
            "e": expires,
        }
        if session_token_id is not None:
            claims["s"] = session_token_id
        payload = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signed_part = f"{_VERSION}.{payload}"
        mac = _b64encode(self._mac(signed_part.encode("ascii")))
        return f"{signed_part}.{mac}", datetime.fromtimestamp(expires, UTC)

    def verify(self, password: str, *, now: datetime) -> TokenClaims:
        """Return the claims of a token this signer issued.

        Raises `TokenInvalid` for anything malformed, forged or altered, and `TokenExpired` once
        ``now`` reaches its expiry.
        """
        now = _as_utc(now)
        if len(password) > _MAX_PASSWORD_CHARS or not password.isascii():
            raise TokenInvalid()
        version, _, rest = password.partition(".")
        payload, _, mac = rest.partition(".")
        if version != _VERSION or not payload or not mac:
            raise TokenInvalid()
        verifier = HMAC(self._key, hashes.SHA256())
        verifier.update(f"{version}.{payload}".encode("ascii"))
        try:
            verifier.verify(_b64decode(mac))
        except InvalidSignature:
            raise TokenInvalid() from None
        claims = _claims_from(_b64decode(payload))
        if now >= claims.expires_at:
            raise TokenExpired()
        return claims

    def verify_authorization(self, header_value: str, *, now: datetime) -> TokenClaims:
        """Verify a ``/v2/`` ``Authorization: Basic …`` header; the username must be ``AWS``."""
        username, password = parse_basic_authorization(header_value)
        if username != REGISTRY_USERNAME:
            raise TokenInvalid()
        return self.verify(password, now=now)

    def _mac(self, message: bytes) -> bytes:
        signer = HMAC(self._key, hashes.SHA256())
        signer.update(message)
        return signer.finalize()


def encode_authorization_token(password: str) -> str:
    """``authorizationToken`` as GetAuthorizationToken returns it: base64("AWS:" + password)."""
    return base64.b64encode(f"{REGISTRY_USERNAME}:{password}".encode()).decode("ascii")


def parse_basic_authorization(header_value: str) -> tuple[str, str]:
    """Split ``Basic base64(username:password)`` into ``(username, password)``.

    Raises `TokenInvalid` for another scheme, bad base64, bad UTF-8 or a missing colon.
    """
    scheme, _, encoded = header_value.strip().partition(" ")
    encoded = encoded.strip()
    if scheme.lower() != "basic" or not encoded or len(encoded) > 2 * _MAX_PASSWORD_CHARS:
        raise TokenInvalid("Basic authorization header is malformed.")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise TokenInvalid("Basic authorization header is malformed.") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise TokenInvalid("Basic authorization header is malformed.")
    return username, password


def _claims_from(payload: bytes) -> TokenClaims:
    # Only reached once the MAC has verified, so a failure here means a bug or a key reused
    # across formats, never an attacker's input; it is still reported as an invalid token.
    try:
        raw = json.loads(payload)
        if not isinstance(raw, dict):
            raise TypeError
        strings = [raw["a"], raw["r"], raw["p"], raw["k"]]
        session = raw.get("s")
        issued, expires = raw["i"], raw["e"]
        if not all(isinstance(value, str) for value in strings):
            raise TypeError
        if session is not None and not isinstance(session, str):
            raise TypeError
        if type(issued) is not int or type(expires) is not int or expires < issued:
            raise TypeError
        return TokenClaims(
            account_id=raw["a"],
            principal_arn=raw["r"],
            principal_id=raw["p"],
            access_key_id=raw["k"],
            session_token_id=session,
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        raise TokenInvalid() from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # urlsafe_b64decode skips foreign characters and ignores the unused low bits of the last
    # character; refusing every non-canonical spelling gives each token exactly one.
    if not _BASE64URL.fullmatch(text):
        raise TokenInvalid()
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid() from None
    if _b64encode(data) != text:
        raise TokenInvalid()
    return data


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC)
