"""Benchmark images: OCI image layouts on disk, made of incompressible random layers.

Each layer is an uncompressed tar (``application/vnd.oci.image.layer.v1.tar``) holding one file of
random bytes, so no registry or client can win by compressing or deduplicating. The random bytes are
an AES-CTR keystream under a fresh key: as incompressible as ``os.urandom`` and twenty times faster,
which keeps image generation out of the way of a 1 GiB run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
TAG = "latest"

_CHUNK = 4 << 20
_TAR_BLOCK = 512
_TAR_OVERHEAD = 3 * _TAR_BLOCK  # one header block, two end-of-archive blocks


@dataclass(frozen=True)
class Image:
    """An OCI image layout on disk, tagged ``latest``."""

    layout: Path
    manifest_digest: str
    layer_digests: tuple[str, ...]
    size_bytes: int  # every blob the registry receives: layers, config and manifest

    @property
    def oci_ref(self) -> str:
        return f"oci:{self.layout}:{TAG}"


class RandomStream:
    """Incompressible bytes: the AES-256-CTR keystream of a random key."""

    def __init__(self) -> None:
        cipher = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(os.urandom(16)))
        self._encryptor = cipher.encryptor()
        self._zeros = bytes(_CHUNK)

    def read(self, n: int) -> bytes:
        if n <= _CHUNK:
            return self._encryptor.update(self._zeros[:n])
        return b"".join(self.read(min(_CHUNK, n - i)) for i in range(0, n, _CHUNK))


def _write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return f"sha256:{hexdigest}", len(data)


def _write_layer(blobs: Path, index: int, layer_bytes: int) -> tuple[str, int]:
    """Write one tar layer of about ``layer_bytes`` and return its digest and exact size."""
    payload = max(_TAR_BLOCK, (layer_bytes - _TAR_OVERHEAD) // _TAR_BLOCK * _TAR_BLOCK)
    info = tarfile.TarInfo(f"bench/layer-{index}.bin")
    info.size = payload
    info.mode = 0o644
    info.mtime = 0
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    digest = hashlib.sha256()
    random = RandomStream()
    tmp = blobs / f".layer-{index}.tmp"
    with tmp.open("wb") as out:
        out.write(header)
        digest.update(header)
        left = payload
        while left:
            chunk = random.read(min(_CHUNK, left))
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
        trailer = bytes(2 * _TAR_BLOCK)
        out.write(trailer)
        digest.update(trailer)
    size = len(header) + payload + len(trailer)
    tmp.rename(blobs / digest.hexdigest())
    return f"sha256:{digest.hexdigest()}", size


def generate_image(layout: Path, total_bytes: int, layers: int) -> Image:
    """Write an OCI image layout of ``layers`` random layers totalling about ``total_bytes``."""
    if layers < 1:
        raise ValueError("an image needs at least one layer")
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    per_layer = total_bytes // layers
    layer_descs = [_write_layer(blobs, i, per_layer) for i in range(layers)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layer_descs]},
    }
    config_digest, config_size = _write_blob(blobs, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": d, "size": s} for d, s in layer_descs],
    }
    manifest_digest, manifest_size = _write_blob(blobs, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": TAG},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return Image(
        layout=layout,
        manifest_digest=manifest_digest,
        layer_digests=tuple(d for d, _ in layer_descs),
        size_bytes=sum(s for _, s in layer_descs) + config_size + manifest_size,
    )


def layout_size(layout: Path) -> int:
    """Bytes of every blob in a layout (what a pull wrote)."""
    return sum(p.stat().st_size for p in (layout / "blobs").rglob("*") if p.is_file())
