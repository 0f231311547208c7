"""Secrets at rest, and the key hierarchy under the one master key.

The master key is 32 random bytes in a file in the data directory (mode 0600), created on first
use. Nothing uses it directly: HKDF-SHA256 derives one independent key per purpose, so the
registry-token signer, the secret box and anything added later never share key material, and
knowing one derived key reveals nothing about another or about the master.

Secrets (secret access keys, …) are sealed with AES-256-GCM. A sealed value is
``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``; nonces are random,
which is safe far beyond the number of secrets a registry stores. An optional ``context`` is
authenticated but not stored (AEAD associated data): sealing an access key's secret with the key
id as context means a ciphertext copied onto another row no longer decrypts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cargohold.auth.errors import SecretBoxError
from cargohold.privatefiles import create_private_file, make_private_dirs

__all__ = ["MASTER_KEY_BYTES", "SecretBox"]

MASTER_KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16
# Distinct HKDF "info" namespaces: the box's own key can never equal a derive_key() result.
_BOX_INFO = b"cargohold:secretbox:aes-256-gcm:v1"
_PURPOSE_INFO_PREFIX = b"cargohold:derived-key:v1:"


class SecretBox:
    """Seals and opens secrets with a key derived from the master key; derives purpose keys."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError(f"master key must be {MASTER_KEY_BYTES} bytes")
        self._master_key = master_key
        self._aead = AESGCM(_hkdf(master_key, _BOX_INFO, MASTER_KEY_BYTES))

    def __repr__(self) -> str:
        return "SecretBox(<master key hidden>)"

    @staticmethod
    def generate_master_key() -> bytes:
        return secrets.token_bytes(MASTER_KEY_BYTES)

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str]) -> SecretBox:
        """Open the box keyed by the master key in ``path``, creating the file (0600) if absent.

        Creation is atomic: the key is written and fsynced under a temporary name, then linked
        into place, so a concurrent starter either wins or reads the winner's complete key.
        Raises `SecretBoxError` if the file exists but does not hold a key.
        """
        key_path = Path(path)
        if not key_path.exists():
            _create_key_file(key_path, cls.generate_master_key())
        return cls(_read_key_file(key_path))

    @classmethod
    def for_node(cls, path: str | os.PathLike[str], *, provisioned: bool) -> SecretBox:
        """The node's master key: a `provisioned` file (configured for the node) must exist,
        the data directory's default one is created on first use."""
        if provisioned:
            return cls.from_existing_key_file(path)
        return cls.from_key_file(path)

    @classmethod
    def from_existing_key_file(cls, path: str | os.PathLike[str]) -> SecretBox:
        """Open the box keyed by the master key in ``path``, which must exist: every node of a
        registry needs the same key, so a node never creates one of its own."""
        key_path = Path(path)
        if not key_path.exists():
            raise SecretBoxError(
                f"master key file {key_path} does not exist: every node of a registry needs "
                "the same key; copy the one the registry already uses, or create one for a new "
                "registry (README: Running a cluster)"
            )
        return cls(_read_key_file(key_path))

    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _VERSION + context)

    def decrypt(self, ciphertext: bytes, *, context: bytes = b"") -> bytes:
        """Open a sealed value. Raises `SecretBoxError` if it was altered, truncated, sealed
        under another key or another ``context``."""
        if len(ciphertext) < 1 + _NONCE_BYTES + _TAG_BYTES or ciphertext[:1] != _VERSION:
            raise SecretBoxError("sealed secret is malformed")
        nonce = ciphertext[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, ciphertext[1 + _NONCE_BYTES :], _VERSION + context)
        except InvalidTag:
            raise SecretBoxError("sealed secret failed authentication") from None

    def derive_key(self, purpose: str, *, length: int = 32) -> bytes:
        """An independent key for ``purpose`` (e.g. ``"registry-token"``); stable across runs."""
        if not purpose or not purpose.isascii() or not purpose.isprintable():
            raise ValueError("purpose must be a non-empty printable ASCII string")
        if not 16 <= length <= 64:
            raise ValueError("length must be between 16 and 64 bytes")
        return _hkdf(self._master_key, _PURPOSE_INFO_PREFIX + purpose.encode("ascii"), length)


def _hkdf(master_key: bytes, info: bytes, length: int) -> bytes:
    # No salt: the master key is already uniformly random, which is what HKDF-Expand needs.
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master_key)


def _read_key_file(path: Path) -> bytes:
    try:
        encoded = path.read_bytes().strip()
        key = base64.urlsafe_b64decode(encoded)
        if base64.urlsafe_b64encode(key) != encoded:
            raise ValueError
    except (binascii.Error, ValueError):
        raise SecretBoxError(f"{path} does not hold a master key") from None
    if len(key) != MASTER_KEY_BYTES:
        raise SecretBoxError(f"{path} does not hold a {MASTER_KEY_BYTES}-byte master key")
    return key


def _create_key_file(path: Path, key: bytes) -> None:
    make_private_dirs(path.parent)
    staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # 0600 exactly, whatever the umask.
    fd = create_private_file(staging)
    try:
        with os.fdopen(fd, "wb") as staged:
            staged.write(base64.urlsafe_b64encode(key) + b"\n")
            staged.flush()
            os.fsync(staged.fileno())
        # If another process created it first, everyone uses that key.
        with contextlib.suppress(FileExistsError):
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
