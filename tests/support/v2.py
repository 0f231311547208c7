"""A small `/v2/` client over `httpx.Client`: push an image monolithically, read it back.

For tests that care about who may do what on `/v2/` rather than about the distribution API
itself (those use `oci_harness` and the real clients).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, image_manifest, sha256_digest


@dataclass(frozen=True)
class TinyImage:
    """One layer and a config, small enough to push in three requests."""

    layer: bytes
    config: bytes
    manifest: bytes

    @classmethod
    def make(cls, seed: str) -> TinyImage:
        layer = f"layer of {seed}".encode()
        config = f'{{"architecture":"amd64","os":"linux","seed":"{seed}"}}'.encode()
        manifest = image_manifest(
            Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, layer)]
        )
        return cls(layer, config, manifest)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def layer_digest(self) -> str:
        return sha256_digest(self.layer)


def push_blob(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post(
        f"/v2/{name}/blobs/uploads/",
        params={"digest": sha256_digest(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def push_image(client: httpx.Client, name: str, tag: str, image: TinyImage) -> httpx.Response:
    """Push blobs then manifest; the first answer that is not a success, else the manifest's."""
    for blob in (image.layer, image.config):
        answer = push_blob(client, name, blob)
        if answer.status_code != 201:
            return answer
    return client.put(
        f"/v2/{name}/manifests/{tag}",
        content=image.manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
