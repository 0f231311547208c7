"""A runnable test image built with no network: Debian's static busybox (`busybox-static`,
`/bin/busybox`) as `/bin/busybox` with its applets linked, a passwd and group file with
`nobody`, written as layer, config and manifest, and pushed over `/v2/`."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.images import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    gzip_bytes,
    image_manifest,
    sha256_digest,
)
from support.v2 import push_blob

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "cat", "id", "pwd", "hostname", "sleep", "wget", "env", "ls", "true")
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"


def _entry(
    name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, mode: int = 0o644
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = 0
    return info


def busybox_layer(extra: dict[str, bytes] | None = None) -> bytes:
    """The uncompressed layer tar."""
    binary = BUSYBOX.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin", "etc", "tmp", "root"):
            tar.addfile(
                _entry(directory, tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
            )
        tar.addfile(_entry("bin/busybox", size=len(binary), mode=0o755), io.BytesIO(binary))
        for applet in APPLETS:
            link = _entry(f"bin/{applet}", tarfile.SYMTYPE)
            link.linkname = "busybox"
            tar.addfile(link)
        for name, data in {"etc/passwd": PASSWD, "etc/group": GROUP, **(extra or {})}.items():
            tar.addfile(_entry(name, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


@dataclass(frozen=True)
class BusyboxImage:
    layer: bytes
    config: bytes
    manifest: bytes

    @classmethod
    def make(cls, *, cmd: tuple[str, ...] = ("sh",), workdir: str = "") -> BusyboxImage:
        tar = busybox_layer()
        layer = gzip_bytes(tar, level=1)
        settings: dict[str, object] = {
            "Env": ["PATH=/bin", "FROM_IMAGE=yes"],
            "Cmd": list(cmd),
        }
        if workdir:
            settings["WorkingDir"] = workdir
        config = canonical_json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": settings,
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
            }
        )
        manifest = image_manifest(
            Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER_GZIP, layer)]
        )
        return cls(layer, config, manifest)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    def push(self, client: httpx.Client, name: str, tag: str) -> None:
        for blob in (self.layer, self.config):
            answer = push_blob(client, name, blob)
            assert answer.status_code == 201, answer.text
        answer = client.put(
            f"/v2/{name}/manifests/{tag}",
            content=self.manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert answer.status_code == 201, answer.text
