"""The archive storage class on the service layer: an archived image is listed and described
under the ARCHIVED filter and never served; restoring it, or pushing it again, goes through
ACTIVATING to ACTIVE; its referrers go with it; a child of an index is refused."""

from __future__ import annotations

import json

import pytest

from cargohold.domain.errors import (
    ImageNotFound,
    ImageStorageClassUpdateNotSupported,
    InvalidParameter,
    ManifestUnknown,
)
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.archive import ArchiveService
from cargohold.service.content import ContentService
from cargohold.service.image_ids import ImageId
from cargohold.service.images import ImageService
from support.images import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    image_manifest,
    index_manifest,
)

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def push(
    content: ContentService,
    repo: Repository,
    seed: str,
    tag: str,
    subject: Descriptor | None = None,
) -> tuple[bytes, str]:
    config, layer = json.dumps({"seed": seed}).encode(), b"shared layer"
    descriptors = Descriptor.of(OCI_CONFIG, config), Descriptor.of(OCI_LAYER, layer)
    async with content._store.write() as tx:
        for descriptor in descriptors:
            await tx.blobs.add_blob(repo.id, descriptor.digest, descriptor.size, 0.0)
    document = json.loads(image_manifest(descriptors[0], [descriptors[1]]))
    if subject is not None:
        document["subject"] = subject.to_json()
    raw = canonical_json(document)
    pushed = await content.put_manifest(repo, tag, raw, OCI_MANIFEST)
    return raw, pushed.manifest.digest


@pytest.fixture
def archive(store: MetadataStore, now: list[float]) -> ArchiveService:
    return ArchiveService(store, lambda: now[0])


async def test_archive_and_restore(
    archive: ArchiveService,
    content: ContentService,
    store: MetadataStore,
    repo: Repository,
    now: list[float],
) -> None:
    images = ImageService(content, store)
    _, digest = await push(content, repo, "a", "v1")
    await content.manifest(repo, "v1")  # cached: archiving must still stop it being served
    manifest, status = await archive.update_storage_class(repo, ImageId(tag="v1"), "ARCHIVE")
    assert (manifest.digest, status) == (digest, "ARCHIVED")
    for reference in ("v1", digest):
        with pytest.raises(ManifestUnknown):
            await content.manifest(repo, reference)
    fetched = await images.batch_get_image(repo, [ImageId(tag="v1")])
    assert [f.code for f in fetched.failures] == ["ImageNotFound"]
    assert (await images.list_images(repo)).items == []
    listed = await images.list_images(repo, image_status="ARCHIVED")
    assert listed.items == [ImageId(digest, "v1")]
    (detail,) = (await images.describe_images(repo, image_status="ANY")).items
    assert detail.manifest.image_status == "ARCHIVED" and detail.manifest.archived_at == now[0]
    # Archiving again changes nothing; restoring goes through ACTIVATING.
    now[0] += 100
    assert (await archive.update_storage_class(repo, ImageId(digest), "ARCHIVE"))[1] == "ARCHIVED"
    assert (await archive.update_storage_class(repo, ImageId(digest), "STANDARD"))[
        1
    ] == "ACTIVATING"
    with pytest.raises(ImageStorageClassUpdateNotSupported):
        await archive.update_storage_class(repo, ImageId(digest), "ARCHIVE")
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, "v1")
    await run_activations(store, archive)
    restored = await content.manifest(repo, "v1")
    assert restored.image_status == "ACTIVE" and restored.activated_at == now[0]
    assert restored.archived_at == now[0] - 100
    assert (await archive.update_storage_class(repo, ImageId(digest), "STANDARD"))[1] == "ACTIVE"


async def run_activations(store: MetadataStore, archive: ArchiveService) -> None:
    async with store.write() as tx:
        job = await tx.jobs.claim("test", 1e12, 60)
    assert job is not None and job.kind == "activate-images"
    await archive.activate(job.payload)


async def test_pushing_an_archived_image_again_restores_it(
    archive: ArchiveService, content: ContentService, store: MetadataStore, repo: Repository
) -> None:
    raw, digest = await push(content, repo, "b", "v1")
    await archive.update_storage_class(repo, ImageId(digest), "ARCHIVE")
    pushed = await content.put_manifest(repo, "v2", raw, OCI_MANIFEST)
    assert pushed.manifest.image_status == "ACTIVATING"
    await run_activations(store, archive)
    assert (await content.manifest(repo, "v2")).image_status == "ACTIVE"


async def test_referrers_follow_and_index_children_stay(
    archive: ArchiveService, content: ContentService, repo: Repository
) -> None:
    raw, digest = await push(content, repo, "c", "v1")
    subject = Descriptor(OCI_MANIFEST, digest, len(raw))
    _, signature = await push(content, repo, "sig", "sig", subject=subject)
    assert [m.digest for m in await content.referrers(repo, digest, None)] == [signature]
    await archive.update_storage_class(repo, ImageId(digest), "ARCHIVE")
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, signature)
    assert await content.referrers(repo, digest, None) == []
    child_raw, child = await push(content, repo, "child", "child")
    index = index_manifest([Descriptor(OCI_MANIFEST, child, len(child_raw))])
    await content.put_manifest(repo, "multi", index, OCI_INDEX)
    with pytest.raises(ImageStorageClassUpdateNotSupported):
        await archive.update_storage_class(repo, ImageId(child), "ARCHIVE")
    with pytest.raises(ImageNotFound):
        await archive.update_storage_class(repo, ImageId(tag="missing"), "ARCHIVE")
    with pytest.raises(InvalidParameter):
        await archive.update_storage_class(repo, ImageId(), "ARCHIVE")
