"""The SBOM of a scanned image: CycloneDX from its last scan's inventory, attached after each
scan as an OCI referrer of the image (an artifact manifest whose subject is the image), and
exported on demand."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from cargohold.domain.digest import Digest
from cargohold.domain.errors import ScanNotFound
from cargohold.domain.inventory import Inventory
from cargohold.domain.manifest import OCI_EMPTY, OCI_MANIFEST
from cargohold.domain.records import Manifest, Repository
from cargohold.ports import Changes, Metadata
from cargohold.scanning.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from cargohold.scanning.sbom import cyclonedx_bytes
from cargohold.service.content import ContentService
from cargohold.service.images import ImageId, ImageService
from cargohold.service.uploads import UploadService


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def referrer_manifest(manifest: Manifest, config: Digest, layer: Digest, size: int) -> bytes:
    """The artifact manifest that attaches an SBOM document (`layer`, of `size` bytes) to
    `manifest`."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SBOM_MEDIA_TYPE,
            "config": {"mediaType": OCI_EMPTY, "digest": str(config), "size": 2},
            "layers": [{"mediaType": SBOM_MEDIA_TYPE, "digest": str(layer), "size": size}],
            "subject": {
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": manifest.size,
            },
            "annotations": {"org.opencontainers.image.description": "CycloneDX SBOM"},
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class SbomService:
    def __init__(
        self,
        store: Metadata,
        content: ContentService,
        uploads: UploadService,
        images: ImageService,
    ) -> None:
        self._store = store
        self._content = content
        self._uploads = uploads
        self._images = images

    async def _repository_of(self, manifest: Manifest) -> Repository:
        async with self._store.read() as tx:
            found = await tx.repositories.repositories_by_id([manifest.repository_id])
        row = found[manifest.repository_id]
        return await self._content.repository(row.name, row.registry_id)

    async def _put_blob(self, repository: Repository, data: bytes) -> Digest:
        digest = Digest.of(data)
        async with self._store.read() as tx:
            present = await tx.blobs.linked_blob_size(repository.id, str(digest))
        if present is None:
            await self._uploads.monolithic(repository, str(digest), _one(data), len(data))
        return digest

    async def attach(self, manifest: Manifest, inventory: Inventory, scan_id: int) -> str:
        """Push the SBOM of `inventory` as a referrer of `manifest` and record it on the scan;
        the referrer's digest."""
        repository = await self._repository_of(manifest)
        document = cyclonedx_bytes(
            inventory, image_name=repository.name, image_digest=manifest.digest
        )
        config = await self._put_blob(repository, b"{}")
        layer = await self._put_blob(repository, document)
        raw = referrer_manifest(manifest, config, layer, len(document))
        digest = Digest.of(raw)
        await self._content.put_manifest(repository, str(digest), raw, OCI_MANIFEST)
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.scans.set_sbom(scan_id, str(digest))
        return str(digest)

    async def export(self, repository: Repository, image_id: ImageId) -> bytes:
        """The image's SBOM from its last scan's inventory (ScanNotFound without one)."""
        page = await self._images.describe_images(repository, [image_id])
        manifest = page.items[0].manifest
        async with self._store.read() as tx:
            scan = await tx.scans.scan_of(manifest.id)
        if scan is None or scan.inventory is None:
            raise ScanNotFound(
                f"The image {manifest.digest} in repository '{repository.name}' has no "
                "completed scan to export"
            )
        return cyclonedx_bytes(
            Inventory.from_json(scan.inventory),
            image_name=repository.name,
            image_digest=manifest.digest,
        )


__all__ = ["SbomService", "referrer_manifest"]
