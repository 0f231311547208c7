"""Scrub on the service layer, on both databases and the filesystem driver: missing and
corrupted blobs are found, reported with the images they break, quarantined (never served
again, bytes moved aside) until an upload of the right bytes; a clean store reports nothing;
one repository can be scrubbed alone; a large blob is re-hashed in bounded memory."""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cargohold.domain.digest import Digest
from cargohold.domain.errors import BlobUnknown
from cargohold.domain.records import Repository
from cargohold.service.content import ContentService
from cargohold.service.paths import blob_key
from cargohold.service.scrub import CORRUPTED, MISSING, Scrubber, quarantine_key
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, image_manifest

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def upload(uploads: UploadService, repo: Repository, data: bytes) -> str:
    digest = Descriptor.of(OCI_LAYER, data).digest
    await uploads.monolithic(repo, digest, _one(data), len(data))
    return digest


async def push(
    content: ContentService, uploads: UploadService, repo: Repository, seed: str
) -> tuple[str, str, str]:
    """(manifest digest, config digest, layer digest)."""
    config, layer = json.dumps({"seed": seed}).encode(), f"layer of {seed}".encode() * 100
    digests = [await upload(uploads, repo, blob) for blob in (config, layer)]
    raw = image_manifest(Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, layer)])
    pushed = await content.put_manifest(repo, seed, raw, OCI_MANIFEST)
    return pushed.manifest.digest, digests[0], digests[1]


def path_of(tmp_path: Path, digest: str) -> Path:
    return tmp_path / "storage" / blob_key(Digest.parse(digest))


async def test_damage_is_found_reported_and_quarantined(
    content: ContentService,
    uploads: UploadService,
    storage: FilesystemDriver,
    repo: Repository,
    tmp_path: Path,
) -> None:
    scrubber = Scrubber(content._store, storage)
    clean = await scrubber.scrub()
    assert clean.damaged == [] and clean.checked == 0
    first, _, corrupt_layer = await push(content, uploads, repo, "a")
    second, lost_config, _ = await push(content, uploads, repo, "b")
    assert (await scrubber.scrub()).damaged == []
    layer_bytes = path_of(tmp_path, corrupt_layer).read_bytes()
    path_of(tmp_path, corrupt_layer).write_bytes(b"X" + layer_bytes[1:])
    path_of(tmp_path, lost_config).unlink()
    seen: list[int] = []
    report = await scrubber.scrub(repair=True, progress=seen.append)
    assert report.checked == 4 and 0 < sum(seen) < report.bytes  # the missing blob: no bytes
    damage = {d.digest: d for d in report.damaged}
    assert damage[corrupt_layer].kind == CORRUPTED
    assert damage[corrupt_layer].images == ((repo.name, first),)
    assert damage[lost_config].kind == MISSING
    assert damage[lost_config].images == ((repo.name, second),)
    assert "no replica" in damage[lost_config].note
    for digest in (corrupt_layer, lost_config):
        with pytest.raises(BlobUnknown):
            await content.blob(repo, digest)
    assert not path_of(tmp_path, corrupt_layer).exists()
    moved = tmp_path / "storage" / quarantine_key(Digest.parse(corrupt_layer))
    assert moved.read_bytes() == b"X" + layer_bytes[1:]
    assert (await scrubber.scrub()).damaged == []  # quarantined blobs are not read again
    # Uploading the right bytes again brings the blob back.
    await upload(uploads, repo, layer_bytes)
    assert (await content.blob(repo, corrupt_layer)).size == len(layer_bytes)
    assert (await scrubber.scrub()).damaged == []


async def test_one_repository(
    content: ContentService, uploads: UploadService, storage: FilesystemDriver, tmp_path: Path
) -> None:
    mine = await content.repository_for_push("team/mine")
    theirs = await content.repository_for_push("team/theirs")
    await push(content, uploads, mine, "m")
    _, config, _ = await push(content, uploads, theirs, "t")
    path_of(tmp_path, config).unlink()
    scrubber = Scrubber(content._store, storage)
    assert (await scrubber.scrub(mine)).damaged == []
    assert [d.digest for d in (await scrubber.scrub(theirs)).damaged] == [config]


async def test_bounded_memory(
    content: ContentService, uploads: UploadService, storage: FilesystemDriver, repo: Repository
) -> None:
    big = os.urandom(1 << 20) * 48  # 48 MiB
    digest = await upload(uploads, repo, big)
    del big
    scrubber = Scrubber(content._store, storage)
    tracemalloc.start()
    try:
        report = await scrubber.scrub()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.checked == 1 and report.damaged == [] and digest
    assert peak < 8 << 20
