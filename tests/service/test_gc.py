"""Online garbage collection on the service layer, on both databases and the filesystem
driver: what no manifest references goes once untouched for the grace period (bytes and rows,
after a deleted image, a deleted repository, bytes no row describes), what is referenced or
recent stays, a dry run changes nothing, and each side of the race the database decides."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cargohold.domain.digest import Digest
from cargohold.domain.errors import ManifestBlobUnknown
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.gc import GarbageCollector
from cargohold.service.paths import blob_key
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, image_manifest

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

GRACE = 3600.0


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def upload(uploads: UploadService, repo: Repository, data: bytes) -> str:
    digest = Descriptor.of(OCI_LAYER, data).digest
    await uploads.monolithic(repo, digest, _one(data), len(data))
    return digest


async def push(
    content: ContentService, uploads: UploadService, repo: Repository, seed: str, tag: str
) -> tuple[str, list[str]]:
    config = json.dumps({"seed": seed}).encode()
    layers = [b"shared base layer", f"own layer {seed}".encode()]
    digests = [await upload(uploads, repo, blob) for blob in (config, *layers)]
    raw = image_manifest(
        Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, layer) for layer in layers]
    )
    pushed = await content.put_manifest(repo, tag, raw, OCI_MANIFEST)
    return pushed.manifest.digest, digests


def stored(root: Path) -> dict[str, int]:
    """The blob files on the filesystem itself: digest -> size."""
    return {
        f"sha256:{path.name}": path.stat().st_size
        for path in (root / "blobs").rglob("*")
        if path.is_file()
    }


@pytest.fixture
def collector(
    store: MetadataStore, storage: FilesystemDriver, now: list[float]
) -> GarbageCollector:
    return GarbageCollector(store, storage, lambda: now[0], grace=GRACE)


async def test_unreferenced_blobs_go_after_the_grace_period(
    collector: GarbageCollector,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    storage: FilesystemDriver,
    tmp_path: Path,
    now: list[float],
) -> None:
    kept_manifest, kept = await push(content, uploads, repo, "kept", "kept")
    gone_manifest, gone = await push(content, uploads, repo, "gone", "gone")
    loose = await upload(uploads, repo, b"uploaded, never referenced")
    await content.delete_manifest(repo, gone_manifest)
    # Within the grace period nothing goes.
    assert (await collector.collect()).removed == []
    now[0] += GRACE + 1
    dry = await collector.collect(dry_run=True)
    unreferenced = {gone[0], gone[2], loose}  # the shared base layer is still referenced
    assert {d for d, _ in dry.removed} == unreferenced
    assert set(stored(tmp_path / "storage")) == set(kept) | unreferenced
    result = await collector.collect()
    assert {d for d, _ in result.removed} == unreferenced
    assert result.reclaimed == sum(size for _, size in result.removed)
    files = stored(tmp_path / "storage")
    assert set(files) == set(kept)
    assert sum(files.values()) == await collector.referenced_bytes()
    # What stays still pulls; what went is unknown.
    assert (await content.manifest(repo, kept_manifest)).digest == kept_manifest
    for digest in kept:
        assert (await content.blob(repo, digest)).size == files[digest]
    assert (await collector.collect()).removed == []


async def test_a_deleted_repository_and_unrecorded_bytes(
    collector: GarbageCollector,
    content: ContentService,
    uploads: UploadService,
    store: MetadataStore,
    storage: FilesystemDriver,
    tmp_path: Path,
    now: list[float],
) -> None:
    other = await content.repository_for_push("team/other")
    await push(content, uploads, other, "x", "x")
    async with store.write() as tx:
        await tx.repositories.delete_repository(other.id)
    stray = Digest.of(b"bytes no row describes")
    await storage.put(blob_key(stray), b"bytes no row describes")
    now[0] += GRACE + 1
    result = await collector.collect()
    assert len(result.removed) == 3
    assert result.orphans == [(blob_key(stray), len(b"bytes no row describes"))]
    assert stored(tmp_path / "storage") == {}


async def test_a_push_never_references_a_condemned_blob(
    collector: GarbageCollector,
    content: ContentService,
    uploads: UploadService,
    store: MetadataStore,
    repo: Repository,
    now: list[float],
) -> None:
    config, layer = b'{"seed": "late"}', b"a layer uploaded long ago"
    digests = [await upload(uploads, repo, blob) for blob in (config, layer)]
    now[0] += GRACE + 1
    # Condemned (the collector's first transaction), bytes not yet deleted.
    async with store.write() as tx:
        assert await tx.blobs.condemn_blobs(digests, now[0] - GRACE) == sorted(digests)
    raw = image_manifest(Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, layer)])
    with pytest.raises(ManifestBlobUnknown):
        await content.put_manifest(repo, "late", raw, OCI_MANIFEST)
    other = await content.repository_for_push("team/mounts")
    assert await content.mount_blob(other, digests[1], repo) is None
    # Uploading again takes the blob back: the collector leaves its bytes.
    await upload(uploads, repo, layer)
    await collector.collect()
    async with store.read() as tx:
        assert await tx.blobs.linked_blob_size(repo.id, digests[1]) == len(layer)
    assert (await content.blob(repo, digests[1])).size == len(layer)


async def test_touched_blobs_stay(
    collector: GarbageCollector,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
) -> None:
    old = await upload(uploads, repo, b"old layer")
    now[0] += GRACE + 1
    other = await content.repository_for_push("team/mounted")
    assert await content.mount_blob(other, old, repo) == len(b"old layer")
    assert (await collector.collect()).removed == []
