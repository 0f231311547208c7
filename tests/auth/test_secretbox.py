"""Secrets at rest: sealing, tamper detection, the master key file and derived keys."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cargohold.auth.errors import SecretBoxError
from cargohold.auth.secretbox import MASTER_KEY_BYTES, SecretBox

SECRET = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SecretBox.generate_master_key())


def test_round_trip(box: SecretBox) -> None:
    sealed = box.encrypt(SECRET)

    assert SECRET not in sealed
    assert box.decrypt(sealed) == SECRET
    assert box.decrypt(box.encrypt(b"")) == b""


def test_sealing_twice_gives_different_ciphertexts(box: SecretBox) -> None:
    assert box.encrypt(SECRET) != box.encrypt(SECRET)


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_any_flipped_byte_is_detected(box: SecretBox, position: int) -> None:
    sealed = bytearray(box.encrypt(SECRET))
    sealed[position] ^= 0x01

    with pytest.raises(SecretBoxError):
        box.decrypt(bytes(sealed))


def test_truncated_and_empty_ciphertexts_are_detected(box: SecretBox) -> None:
    sealed = box.encrypt(SECRET)

    for broken in (b"", sealed[:20], sealed[:-1]):
        with pytest.raises(SecretBoxError):
            box.decrypt(broken)


def test_another_master_key_cannot_open_it(box: SecretBox) -> None:
    other = SecretBox(SecretBox.generate_master_key())

    with pytest.raises(SecretBoxError):
        other.decrypt(box.encrypt(SECRET))


def test_the_context_binds_a_ciphertext_to_its_row(box: SecretBox) -> None:
    sealed = box.encrypt(SECRET, context=b"access-key:AKIAONE")

    assert box.decrypt(sealed, context=b"access-key:AKIAONE") == SECRET
    with pytest.raises(SecretBoxError):
        box.decrypt(sealed, context=b"access-key:AKIATWO")
    with pytest.raises(SecretBoxError):
        box.decrypt(sealed)


def test_errors_and_repr_do_not_reveal_keys_or_plaintext(box: SecretBox) -> None:
    sealed = bytearray(box.encrypt(SECRET))
    sealed[-1] ^= 0x01

    with pytest.raises(SecretBoxError) as caught:
        box.decrypt(bytes(sealed))

    assert SECRET.decode() not in str(caught.value)
    assert "hidden" in repr(box)


def test_master_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        SecretBox(b"short")


# -- the master key file ----------------------------------------------------------------------


def test_key_file_is_created_0600_on_first_use_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "master.key"

    first = SecretBox.from_key_file(key_file)
    mode = stat.S_IMODE(key_file.stat().st_mode)
    contents = key_file.read_bytes()
    second = SecretBox.from_key_file(key_file)

    assert mode == 0o600
    assert key_file.read_bytes() == contents
    assert second.decrypt(first.encrypt(SECRET)) == SECRET
    assert second.derive_key("registry-token") == first.derive_key("registry-token")
    # Nothing but the key file is left behind.
    assert [p.name for p in key_file.parent.iterdir()] == ["master.key"]


def test_key_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        SecretBox.from_key_file(tmp_path / "master.key")
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    boxes: list[SecretBox] = []
    barrier = threading.Barrier(8)

    def open_box() -> None:
        barrier.wait()
        boxes.append(SecretBox.from_key_file(key_file))

    threads = [threading.Thread(target=open_box) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    keys = {box.derive_key("probe") for box in boxes}
    assert len(boxes) == 8
    assert len(keys) == 1


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    for contents in (b"not base64 at all!", b"c2hvcnQ=\n"):
        key_file.write_bytes(contents)
        with pytest.raises(SecretBoxError):
            SecretBox.from_key_file(key_file)


# -- derived keys ------------------------------------------------------------------------------


def test_different_purposes_give_different_keys(box: SecretBox) -> None:
    token_key = box.derive_key("registry-token")
    other_key = box.derive_key("upload-state")

    assert len(token_key) == 32
    assert token_key != other_key
    assert box.derive_key("registry-token") == token_key


def test_derived_keys_depend_on_the_master_key() -> None:
    one = SecretBox(bytes(MASTER_KEY_BYTES))
    two = SecretBox(bytes([1]) * MASTER_KEY_BYTES)

    assert one.derive_key("registry-token") != two.derive_key("registry-token")


@pytest.mark.parametrize("purpose", ["secretbox", "cargohold:secretbox:aes-256-gcm:v1"])
def test_no_purpose_yields_the_key_that_seals_secrets(purpose: str) -> None:
    master = SecretBox.generate_master_key()
    box = SecretBox(master)
    sealed = box.encrypt(SECRET)
    nonce, body = sealed[1:13], sealed[13:]
    derived = box.derive_key(purpose)

    assert derived != master
    with pytest.raises(InvalidTag):
        AESGCM(derived).decrypt(nonce, body, sealed[:1])


@pytest.mark.parametrize("purpose", ["", "tab\there", "naïve"])
def test_purposes_must_be_printable_ascii(box: SecretBox, purpose: str) -> None:
    with pytest.raises(ValueError):
        box.derive_key(purpose)


def test_a_provisioned_master_key_is_never_made_up(tmp_path: Path) -> None:
    """A node configured with `master_key_file` reads that key or refuses; only the data
    directory's default key is created on first use."""
    missing = tmp_path / "provisioned.key"
    with pytest.raises(SecretBoxError, match=f"{missing} does not exist"):
        SecretBox.for_node(missing, provisioned=True)
    assert not missing.exists()
    created = SecretBox.for_node(tmp_path / "default.key", provisioned=False)
    (tmp_path / "default.key").rename(missing)
    shared = SecretBox.for_node(missing, provisioned=True)
    assert shared.decrypt(created.encrypt(b"one key for every node")) == b"one key for every node"
