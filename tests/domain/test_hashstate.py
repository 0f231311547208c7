"""Resumable hashing: a state saved mid-stream continues to the same digest as hashlib."""

from __future__ import annotations

import hashlib
import os
import pickle

import pytest

from cargohold.domain import hashstate
from cargohold.domain.hashstate import ResumableHash

DATA = os.urandom(300_000)


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_matches_hashlib(algorithm: str) -> None:
    hasher = ResumableHash(algorithm)
    for start in range(0, len(DATA), 4099):
        hasher.update(DATA[start : start + 4099])
    assert hasher.hexdigest() == hashlib.new(algorithm, DATA).hexdigest()


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_empty(algorithm: str) -> None:
    assert ResumableHash(algorithm).hexdigest() == hashlib.new(algorithm).hexdigest()


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("cut", [0, 1, 63, 64, 65, 127, 128, 129, 100_000])
def test_state_survives_serialisation(algorithm: str, cut: int) -> None:
    """A state taken at any offset (block-aligned or not) resumes in a new object."""
    first = ResumableHash(algorithm)
    first.update(DATA[:cut])
    state = first.state()
    assert isinstance(state, bytes), "libcrypto is needed for resumable state in these tests"
    # What the uploads table stores is bytes; it must survive a round-trip through storage.
    state = pickle.loads(pickle.dumps(state))
    resumed = ResumableHash.restore(algorithm, state)
    assert resumed is not None
    resumed.update(DATA[cut:])
    assert resumed.hexdigest() == hashlib.new(algorithm, DATA).hexdigest()


def test_hexdigest_does_not_end_the_hash() -> None:
    hasher = ResumableHash()
    hasher.update(b"abc")
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    hasher.update(b"def")
    assert hasher.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


def test_update_accepts_bytearray_and_memoryview() -> None:
    hasher = ResumableHash()
    hasher.update(bytearray(b"ab"))
    hasher.update(memoryview(b"cd"))
    assert hasher.hexdigest() == hashlib.sha256(b"abcd").hexdigest()


def test_restore_refuses_unusable_state() -> None:
    assert ResumableHash.restore("sha256", None) is None
    assert ResumableHash.restore("sha256", b"short") is None
    sha512_state = ResumableHash("sha512").state()
    assert ResumableHash.restore("sha256", sha512_state) is None
    assert ResumableHash.restore("md5", b"x" * 112) is None


def test_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        ResumableHash("md5")


def test_without_libcrypto_the_state_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashstate, "_LIB", None)
    hasher = ResumableHash("sha256")
    hasher.update(b"abc")
    assert hasher.state() is None
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    assert ResumableHash.restore("sha256", b"x" * 112) is None
