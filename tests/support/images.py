"""Test images built in Python, with no network: layers, configs, manifests, indexes and artifacts.

Everything here is deterministic (fixed mtimes, owners and gzip headers; seeded data), so the same
call always yields the same digests and a test can compare what a client pushed with what it gets
back byte for byte. Images are written as OCI image layouts (`oci-layout`, `index.json`,
`blobs/sha256/…`), which `skopeo copy oci:DIR:TAG …` reads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
REF_NAME = "org.opencontainers.image.ref.name"

MIB = 1 << 20
_EPOCH = "1970-01-01T00:00:00Z"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The compact, key-sorted JSON every manifest and config here is serialised as."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    platform: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    artifact_type: str | None = None

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Descriptor:
        return cls(media_type, sha256_digest(data), len(data))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type is not None:
            out["artifactType"] = self.artifact_type
        if self.platform is not None:
            out["platform"] = dict(self.platform)
        if self.annotations is not None:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Layer:
    """A layer blob: its descriptor, and the digest of its uncompressed tar (the diff id)."""

    descriptor: Descriptor
    diff_id: str


@dataclass(frozen=True)
class Image:
    """An image manifest with its config and layers, as stored in a layout."""

    manifest: bytes
    config: Descriptor
    layers: tuple[Layer, ...]
    platform: Mapping[str, str]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(OCI_MANIFEST, self.digest, len(self.manifest), platform=self.platform)

    @property
    def blob_digests(self) -> list[str]:
        return [self.config.digest, *(layer.descriptor.digest for layer in self.layers)]


@dataclass(frozen=True)
class Index:
    """An image index and the images it lists."""

    manifest: bytes
    children: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(OCI_INDEX, self.digest, len(self.manifest))


# --- layers -------------------------------------------------------------------------------------


def _tar_info(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _parents(names: Iterable[str]) -> list[str]:
    dirs: set[str] = set()
    for name in names:
        parts = name.split("/")[:-1]
        dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(dirs)


def tar_bytes(files: Mapping[str, bytes]) -> bytes:
    """A deterministic tar of `files` (path → contents) and their parent directories."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory in _parents(files):
            tar.addfile(_tar_info(directory, 0, directory=True))
        for name in sorted(files):
            data = files[name]
            tar.addfile(_tar_info(name, len(data)), io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes, *, level: int = 6) -> bytes:
    """Gzip with a zero mtime and no file name, so the output depends only on the input."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=level) as gz:
        gz.write(data)
    return buf.getvalue()


def make_layer(files: Mapping[str, bytes], *, compress: bool = True) -> tuple[Layer, bytes]:
    """A layer holding `files`: its descriptor and diff id, and the blob bytes."""
    tar = tar_bytes(files)
    blob = gzip_bytes(tar) if compress else tar
    media_type = OCI_LAYER_GZIP if compress else OCI_LAYER
    return Layer(Descriptor.of(media_type, blob), sha256_digest(tar)), blob


class SeededStream:
    """Cheap pseudo-random bytes: one seeded 1 MiB block, each copy stamped with its index.

    Generating it costs a memcpy per MiB, so tests that move hundreds of MiB stay I/O-bound.
    """

    def __init__(self, seed: int, size: int, block_size: int = MIB) -> None:
        self._block = random.Random(seed).randbytes(block_size)
        self._size = size
        self._pos = 0

    def chunks(self) -> Iterator[bytes]:
        """The whole stream as blocks of (at most) the block size."""
        while True:
            chunk = self.read(len(self._block))
            if not chunk:
                return
            yield chunk

    def read(self, n: int = -1) -> bytes:
        remaining = self._size - self._pos
        n = remaining if n < 0 else min(n, remaining)
        out = bytearray()
        block_size = len(self._block)
        while len(out) < n:
            index, offset = divmod(self._pos, block_size)
            block = index.to_bytes(8, "big") + self._block[8:]
            piece = block[offset : offset + n - len(out)]
            out += piece
            self._pos += len(piece)
        return bytes(out)


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it to an inner file."""

    def __init__(self, inner: io.RawIOBase | io.BufferedIOBase | gzip.GzipFile) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.hash.update(data)
        self.size += len(data)
        self._inner.write(data)
        return len(data)


def write_random_layer(blobs_dir: Path, *, seed: int, size: int, compress_level: int = 0) -> Layer:
    """Write a gzip layer of one `size`-byte seeded file straight to `blobs_dir`, streaming.

    Level 0 gzip (stored deflate blocks) is a valid `tar+gzip` layer that costs almost no CPU, so a
    client pushes it unchanged and a large image builds in seconds.
    """
    blobs_dir.mkdir(parents=True, exist_ok=True)
    staging = blobs_dir / f".staging-{seed}-{size}"
    with staging.open("wb") as raw:
        blob_hash = _HashingWriter(raw)
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=blob_hash, mtime=0, compresslevel=compress_level
        ) as gz:
            tar_hash = _HashingWriter(gz)
            with tarfile.open(fileobj=tar_hash, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                tar.addfile(_tar_info("data", 0, directory=True))
                tar.addfile(_tar_info(f"data/{seed}.bin", size), SeededStream(seed, size))
        raw.flush()
        os.fsync(raw.fileno())
    hexdigest = blob_hash.hash.hexdigest()
    staging.rename(blobs_dir / hexdigest)
    return Layer(
        Descriptor(OCI_LAYER_GZIP, "sha256:" + hexdigest, blob_hash.size),
        "sha256:" + tar_hash.hash.hexdigest(),
    )


# --- configs, manifests, indexes ----------------------------------------------------------------


def image_config(
    layers: Sequence[Layer], *, architecture: str = "amd64", os_name: str = "linux"
) -> bytes:
    config = {
        "created": _EPOCH,
        "architecture": architecture,
        "os": os_name,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": _EPOCH, "created_by": "cargohold tests"} for _ in layers],
    }
    return canonical_json(config)


def image_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    *,
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return canonical_json(manifest)


def index_manifest(children: Sequence[Descriptor]) -> bytes:
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [child.to_json() for child in children],
        }
    )


def artifact_manifest(
    *,
    artifact_type: str,
    subject: Descriptor,
    layers: Sequence[Descriptor],
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """An image-spec 1.1 artifact: `artifactType`, the empty config, and a `subject`."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2, "data": "e30="},
        "layers": [layer.to_json() for layer in layers],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return canonical_json(manifest)


# --- OCI image layouts --------------------------------------------------------------------------


@dataclass
class OciLayout:
    """An OCI image layout directory that images and indexes are written into."""

    path: Path
    refs: dict[str, Descriptor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self._write_index()

    @property
    def blobs_dir(self) -> Path:
        return self.path / "blobs" / "sha256"

    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.path / "blobs" / algorithm / hexdigest

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def add_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            path.write_bytes(data)
        return digest

    def add_image(
        self,
        layers: Sequence[tuple[Layer, bytes | None]],
        *,
        architecture: str = "amd64",
        tag: str | None = None,
    ) -> Image:
        """Write an image from (layer, blob bytes, or None when the blob is already stored)."""
        for layer, blob in layers:
            if blob is not None:
                self.add_blob(blob)
            if not self.blob_path(layer.descriptor.digest).exists():
                raise FileNotFoundError(
                    f"layer blob {layer.descriptor.digest} is not in {self.path}"
                )
        only_layers = [layer for layer, _ in layers]
        config_bytes = image_config(only_layers, architecture=architecture)
        config = Descriptor.of(OCI_CONFIG, config_bytes)
        self.add_blob(config_bytes)
        manifest = image_manifest(config, [layer.descriptor for layer in only_layers])
        self.add_blob(manifest)
        image = Image(
            manifest, config, tuple(only_layers), {"architecture": architecture, "os": "linux"}
        )
        if tag is not None:
            self.tag(tag, Descriptor(OCI_MANIFEST, image.digest, len(manifest)))
        return image

    def add_index(self, children: Sequence[Image], *, tag: str | None = None) -> Index:
        manifest = index_manifest([child.descriptor for child in children])
        self.add_blob(manifest)
        index = Index(manifest, tuple(children))
        if tag is not None:
            self.tag(tag, index.descriptor)
        return index

    def tag(self, name: str, descriptor: Descriptor) -> None:
        self.refs[name] = descriptor
        self._write_index()

    def reference(self, tag: str) -> str:
        """The skopeo/podman image reference of `tag` in this layout."""
        return f"oci:{self.path}:{tag}"

    def _write_index(self) -> None:
        manifests = [
            Descriptor(d.media_type, d.digest, d.size, annotations={REF_NAME: name}).to_json()
            for name, d in sorted(self.refs.items())
        ]
        (self.path / "index.json").write_bytes(
            canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
        )


def small_image(
    layout: OciLayout, *, tag: str | None, seed: int = 0, architecture: str = "amd64"
) -> Image:
    """A two-layer gzip image with a few text files; different seeds give different digests."""
    base = make_layer(
        {
            "etc/os-release": b'ID=cargohold-test\nNAME="cargohold test image"\n',
            "etc/hostname": b"cargohold\n",
            f"usr/share/seed-{seed}": f"seed {seed} {architecture}\n".encode(),
        }
    )
    app = make_layer(
        {
            "app/main.py": b'print("hello from cargohold")\n',
            "app/data.bin": random.Random(seed).randbytes(64 * 1024),
        }
    )
    return layout.add_image([base, app], architecture=architecture, tag=tag)


def multi_platform_index(layout: OciLayout, *, tag: str, seed: int = 0) -> Index:
    """An index with a linux/amd64 and a linux/arm64 child image."""
    amd64 = small_image(layout, tag=None, seed=seed, architecture="amd64")
    arm64 = small_image(layout, tag=None, seed=seed, architecture="arm64")
    return layout.add_index([amd64, arm64], tag=tag)


def large_image(layout: OciLayout, *, tag: str, layer_sizes: Sequence[int], seed: int = 1) -> Image:
    """A multi-layer image of seeded data, each layer streamed to disk (no layer held in memory)."""
    layers = [
        (write_random_layer(layout.blobs_dir, seed=seed * 1000 + i, size=size), None)
        for i, size in enumerate(layer_sizes)
    ]
    return layout.add_image(layers, tag=tag)
