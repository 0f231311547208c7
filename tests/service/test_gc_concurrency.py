"""Garbage collection while pushes go on: 20 pushers sharing layers push, delete and push again
while the collector runs in a loop with no grace period at all; then every image committed and
not deleted pulls with verified digests, and after a final collection the bytes in storage are
exactly those of the blobs still referenced.

Run on both databases and over the storage drivers in `DRIVERS`. Bounded for the suite: the
PostgreSQL + filesystem run lasts `LONG_RUN` seconds (60), the others `SHORT_RUN`
(`CARGOHOLD_GC_SOAK_SECONDS` sets both)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cargohold.domain.errors import ManifestBlobUnknown, ManifestUnknown
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.ports import StorageDriver
from cargohold.service.content import ContentService
from cargohold.service.gc import GarbageCollector
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from cargohold.storage.s3 import MIN_PART, S3Driver
from cargohold.storage.s3client import S3Settings
from support.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, image_manifest
from support.seaweed import Seaweed

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

PUSHERS = 20
#: Pushes of one image before a pusher gives up (each refusal answered by uploading again).
ATTEMPTS = 100
REPOSITORIES = 5
LONG_RUN = float(os.environ.get("CARGOHOLD_GC_SOAK_SECONDS", 60))
SHORT_RUN = float(os.environ.get("CARGOHOLD_GC_SOAK_SECONDS", 10))
#: The grace periods the collecting loop takes turns with (seconds), each at least twice the
#: longest recent push attempt (see `collect_until`).
GRACES = (0.0, 1.0, 1.0, 1.0)
#: Push attempts whose durations pace the collector.
RECENT = 40
#: Collections a run goes on for, past its time, until `until`.
MIN_COLLECTIONS = 10
SHARED = [hashlib.sha256(f"shared {i}".encode()).digest() * (64 * (i + 1)) for i in range(6)]


def _filesystem(request: pytest.FixtureRequest, root: Path) -> StorageDriver:
    return FilesystemDriver(root / "storage")


def _s3(request: pytest.FixtureRequest, root: Path) -> StorageDriver:
    """A fresh prefix of a bucket on the tests' SeaweedFS."""
    store: Seaweed = request.getfixturevalue("seaweed")
    settings = S3Settings(
        bucket=request.getfixturevalue("s3_bucket"),
        prefix=f"gc{os.urandom(6).hex()}/",
        endpoint_url=store.endpoint,
        region="us-east-1",
        path_style=True,
        access_key_id=store.access_key,
        secret_access_key=store.secret_key,
    )
    return S3Driver(settings, part_size=MIN_PART)


#: Storage drivers the test runs over: name -> factory of a driver on a fresh directory or prefix.
DRIVERS: dict[str, Callable[[pytest.FixtureRequest, Path], StorageDriver]] = {
    "filesystem": _filesystem,
    "s3": _s3,
}


@pytest.fixture(scope="module")
def s3_bucket(seaweed: Seaweed) -> str:
    return seaweed.new_bucket()


@dataclass
class Image:
    repository: Repository
    tag: str
    raw: bytes
    blobs: dict[str, bytes]

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()


@dataclass
class Stats:
    pushed: int = 0
    deleted: int = 0
    repushed: int = 0
    refused: int = 0
    mounted: int = 0
    collections: int = 0
    collected: int = 0
    live: dict[str, Image] = field(default_factory=dict)
    #: Durations of the latest push attempts (seconds), upload to manifest.
    attempts: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))

    @property
    def covered(self) -> bool:
        """Whether the run has seen every event it is meant to check."""
        return bool(
            self.pushed >= PUSHERS
            and self.deleted
            and self.repushed
            and self.collections > MIN_COLLECTIONS
            and self.collected
            and self.refused
        )

    @property
    def slowest(self) -> float:
        return max(self.attempts, default=0.0)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_image(repository: Repository, name: str, chooser: random.Random) -> Image:
    config = json.dumps({"image": name}).encode()
    layers = [*chooser.sample(SHARED, 2), f"own layer of {name}".encode() * 50]
    raw = image_manifest(
        Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, layer) for layer in layers]
    )
    blobs = {_digest(blob): blob for blob in (config, *layers)}
    return Image(repository, name, raw, blobs)


class Pusher:
    def __init__(
        self,
        number: int,
        content: ContentService,
        uploads: UploadService,
        repositories: list[Repository],
        stats: Stats,
    ) -> None:
        self.number = number
        self.content = content
        self.uploads = uploads
        self.repositories = repositories
        self.stats = stats
        self.chooser = random.Random(number)
        self.mine: list[Image] = []
        self.deleted: list[Image] = []

    async def run(self, deadline: float, until: float) -> None:
        """Push, delete and push again until `deadline`; past it, until `until` at the latest,
        while the run has not yet seen all it checks (`Stats.covered`: a slow store and
        database may need longer for that)."""
        count = 0
        while (now := time.monotonic()) < deadline or (now < until and not self.stats.covered):
            roll = self.chooser.random()
            if roll < 0.2 and self.mine:
                image = self.mine.pop(self.chooser.randrange(len(self.mine)))
                await self.content.delete_manifest(image.repository, image.digest)
                del self.stats.live[image.digest]
                self.deleted.append(image)
                self.stats.deleted += 1
            elif roll < 0.35 and self.deleted:
                image = self.deleted.pop(self.chooser.randrange(len(self.deleted)))
                await self.push(image)
                self.stats.repushed += 1
            else:
                count += 1
                repository = self.chooser.choice(self.repositories)
                await self.push(make_image(repository, f"p{self.number}-{count}", self.chooser))

    async def push(self, image: Image) -> None:
        """Upload what the repository lacks (or mount it), then the manifest; a refusal for a
        blob collected meanwhile is answered as a client does, by uploading again."""
        for attempt in range(ATTEMPTS):
            started = time.monotonic()
            for digest, data in image.blobs.items():
                if attempt == 0 and await self.present(image.repository, digest):
                    continue
                if attempt == 0 and self.chooser.random() < 0.3 and await self.mount(image, digest):
                    continue
                await self.uploads.monolithic(image.repository, digest, _one(data), len(data))
            try:
                await self.content.put_manifest(
                    image.repository, image.tag, image.raw, OCI_MANIFEST
                )
            except ManifestBlobUnknown:
                self.stats.refused += 1
                continue
            finally:
                self.stats.attempts.append(time.monotonic() - started)
            self.mine.append(image)
            self.stats.live[image.digest] = image
            self.stats.pushed += 1
            return
        raise AssertionError(f"{image.tag} could not be pushed in {ATTEMPTS} attempts")

    async def present(self, repository: Repository, digest: str) -> bool:
        try:
            await self.content.blob(repository, digest)
        except Exception:
            return False
        return True

    async def mount(self, image: Image, digest: str) -> bool:
        source = self.chooser.choice(self.repositories)
        if source.id == image.repository.id:
            return False
        mounted = await self.content.mount_blob(image.repository, digest, source)
        if mounted is not None:
            self.stats.mounted += 1
        return mounted is not None


async def pause(done: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), seconds)


async def collect_until(collector: GarbageCollector, done: asyncio.Event, stats: Stats) -> None:
    """Collect in a loop, one time in four with no grace at all: a blob is then collected
    between its upload and the manifest that needs it, and the push must be refused, never
    committed without it.

    Paced by the pushes, as a real grace period is longer than any push: collections with no
    grace start at least twice the longest recent push attempt apart, and the others give at
    least that much grace. A push is then refused at most about one attempt in two, however
    slow a loaded machine makes it; a fixed pace lets every attempt of every push outlast the
    gap between two collections, and no push ever lands."""
    last_without_grace = time.monotonic()
    while not done.is_set():
        grace = GRACES[stats.collections % len(GRACES)]
        if grace == 0:
            await pause(done, last_without_grace + 2 * stats.slowest - time.monotonic())
            last_without_grace = time.monotonic()
        else:
            grace = max(grace, 2 * stats.slowest)
        result = await collector.collect(grace=grace)
        stats.collections += 1
        stats.collected += len(result.removed)
        await pause(done, 0.02)  # between collections


async def read_all(storage: StorageDriver, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def stored_bytes(storage: StorageDriver) -> int:
    total = 0
    for key in await storage.list("blobs/"):
        info = await storage.stat(key)
        assert info is not None
        total += info.size
    return total


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, StorageDriver]:
    return request.param, DRIVERS[request.param](request, tmp_path)


async def test_collection_during_pushes(
    store: MetadataStore, driver: tuple[str, StorageDriver], db_url: str, tmp_path: Path
) -> None:
    name, storage = driver
    long = db_url.startswith("postgresql") and name == "filesystem"
    seconds = LONG_RUN if long else SHORT_RUN
    content = ContentService(store, storage, time.time, registry_id="123456789012")
    uploads = UploadService(store, storage, time.time)
    collector = GarbageCollector(store, storage, time.time, grace=0)
    repositories = []
    for i in range(REPOSITORIES):
        async with store.write() as tx:
            repositories.append(
                await tx.repositories.create_repository("123456789012", f"soak/r{i}", time.time())
            )
    stats = Stats()
    pushers = [Pusher(i, content, uploads, repositories, stats) for i in range(PUSHERS)]
    done = asyncio.Event()
    gc = asyncio.create_task(collect_until(collector, done, stats))
    deadline = time.monotonic() + seconds
    try:
        await asyncio.gather(*(p.run(deadline, deadline + 3 * seconds) for p in pushers))
    finally:
        done.set()
        await gc
    assert stats.covered, stats

    # Every image committed and not deleted pulls, its digests verified end to end.
    for image in stats.live.values():
        manifest = await content.manifest(image.repository, image.digest)
        assert _digest(manifest.content) == image.digest
        for digest, data in image.blobs.items():
            location = await content.blob(image.repository, digest)
            body = await read_all(storage, location.key)
            assert _digest(body) == digest and len(body) == len(data)
    for pusher in pushers:
        for image in pusher.deleted:
            if image.digest not in stats.live:
                with pytest.raises(ManifestUnknown):
                    await content.manifest(image.repository, image.digest)

    # After a final collection, storage holds exactly the blobs still referenced.
    await collector.collect(grace=0)
    referenced = {d: len(b) for image in stats.live.values() for d, b in image.blobs.items()}
    assert await stored_bytes(storage) == sum(referenced.values())
    assert await collector.referenced_bytes() == sum(referenced.values())
    if name == "filesystem":
        on_disk = sum(
            p.stat().st_size for p in (tmp_path / "storage" / "blobs").rglob("*") if p.is_file()
        )
        assert on_disk == sum(referenced.values())
