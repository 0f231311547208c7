"""Resumable SHA-256/SHA-512 whose state survives a restart or moves to another node.

hashlib cannot export its state, so an upload split over requests would have to be re-read on
commit. OpenSSL's SHA256_CTX/SHA512_CTX are plain public structs: driving them through ctypes
gives the same speed as hashlib (SHA-NI, GIL released during the call) with a state that is
just bytes, stored beside the upload in the metadata database. Where libcrypto cannot be loaded
the state is simply absent and the upload is re-hashed on commit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from typing import Final

# sizeof(SHA256_CTX) and sizeof(SHA512_CTX) on every platform OpenSSL builds for.
_CTX_SIZE: Final = {"sha256": 112, "sha512": 216}
_DIGEST_SIZE: Final = {"sha256": 32, "sha512": 64}


def _load() -> ctypes.CDLL | None:
    path = ctypes.util.find_library("crypto")
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        for alg in ("SHA256", "SHA512"):
            for suffix, args in (
                ("_Init", [ctypes.c_void_p]),
                ("_Update", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
                ("_Final", [ctypes.c_char_p, ctypes.c_void_p]),
            ):
                fn = getattr(lib, alg + suffix)
                fn.argtypes = args
                fn.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lib


_LIB: Final = _load()


class ResumableHash:
    """An incremental hash whose state can be saved with `state()` and restored with `restore`."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _CTX_SIZE:
            raise ValueError(f"unsupported algorithm {algorithm}")
        self.algorithm = algorithm
        self._ctx: ctypes.Array[ctypes.c_char] | None = None
        self._fallback: hashlib._Hash | None = None
        if _LIB is not None:
            self._ctx = ctypes.create_string_buffer(_CTX_SIZE[algorithm])
            getattr(_LIB, algorithm.upper() + "_Init")(self._ctx)
        else:
            self._fallback = hashlib.new(algorithm)

    @classmethod
    def restore(cls, algorithm: str, state: bytes | None) -> ResumableHash | None:
        """A hash continuing from `state`, or None when the state cannot be used here."""
        if state is None or _LIB is None or len(state) != _CTX_SIZE.get(algorithm, -1):
            return None
        hasher = cls(algorithm)
        hasher._ctx = ctypes.create_string_buffer(state, len(state))
        return hasher

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._ctx is not None:
            buf = bytes(data) if not isinstance(data, bytes) else data
            getattr(_LIB, self.algorithm.upper() + "_Update")(self._ctx, buf, len(buf))
        else:
            assert self._fallback is not None
            self._fallback.update(data)

    def state(self) -> bytes | None:
        """The serialisable state, or None when only an opaque hashlib object is available."""
        return self._ctx.raw if self._ctx is not None else None

    def hexdigest(self) -> str:
        """The digest so far; the hash can go on being updated afterwards."""
        if self._ctx is not None:
            ctx = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx.raw))
            out = ctypes.create_string_buffer(_DIGEST_SIZE[self.algorithm])
            getattr(_LIB, self.algorithm.upper() + "_Final")(out, ctx)
            return out.raw.hex()
        assert self._fallback is not None
        return self._fallback.hexdigest()
