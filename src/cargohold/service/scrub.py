"""Scrub: every stored blob (or those one repository may read) read again and re-hashed,
streaming, one chunk at a time, to find the missing and the corrupted ones.

A damaged blob is quarantined: its bytes (if any) are moved to `quarantine/<algorithm>/<hex>`,
and its row is marked, so it is never served again (`BLOB_UNKNOWN`) and no push can reference
it (`MANIFEST_BLOB_UNKNOWN`) until an upload of the right bytes brings it back. The report
names the images each damaged blob breaks. Before a blob is quarantined its row is locked and
it is checked once more, so an upload repairing it at the same moment is never undone.

`repair` restores a damaged blob from a replica; there is no replication yet, so a repair only
says so, and the blob waits for a push of the same content.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from cargohold.domain.digest import Digest
from cargohold.domain.records import Repository
from cargohold.ports import Changes, KeyNotFound, Metadata, StorageDriver
from cargohold.service.paths import blob_key

log = logging.getLogger(__name__)

#: The job kind of the periodic scrub.
SCRUB = "scrub"
BATCH = 200
#: Chunks this large are hashed in a worker thread.
_THREAD_CHUNK = 256 * 1024

MISSING = "missing"
CORRUPTED = "corrupted"


@dataclass(frozen=True, slots=True)
class Damage:
    digest: str
    kind: str
    #: (repository, manifest digest) of each image that references the blob.
    images: tuple[tuple[str, str], ...]
    repaired: bool = False
    note: str = ""


@dataclass
class ScrubReport:
    checked: int = 0
    bytes: int = 0
    damaged: list[Damage] = field(default_factory=list)


def quarantine_key(digest: Digest) -> str:
    return f"quarantine/{digest.algorithm}/{digest.hex}"


class Scrubber:
    def __init__(
        self,
        store: Metadata,
        storage: StorageDriver,
        *,
        interval: float = 0.0,
    ) -> None:
        self._store = store
        self._storage = storage
        self.interval = interval

    async def run(self, payload: Mapping[str, Any] | None = None) -> None:
        """The periodic job."""
        report = await self.scrub()
        for damage in report.damaged:
            log.error(
                "scrub: blob %s is %s; images broken: %s",
                damage.digest,
                damage.kind,
                ", ".join(f"{r}@{m}" for r, m in damage.images) or "none",
            )

    async def scrub(
        self,
        repository: Repository | None = None,
        *,
        repair: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> ScrubReport:
        """Check every blob; `progress` is told of the bytes read as they are."""
        report = ScrubReport()
        after = ""
        while True:
            async with self._store.read() as tx:
                batch = await tx.blobs.blobs_to_scrub(
                    None if repository is None else repository.id, after=after, limit=BATCH
                )
            if not batch:
                return report
            after = batch[-1][0]
            for digest, size in batch:
                kind = await self._check(Digest.parse(digest), size, progress)
                report.checked += 1
                report.bytes += size
                if kind is not None and await self._quarantine(Digest.parse(digest), size):
                    report.damaged.append(await self._damage(digest, kind, repair))

    async def _check(
        self, digest: Digest, size: int, progress: Callable[[int], None] | None
    ) -> str | None:
        """MISSING, CORRUPTED, or None when the bytes are the blob's."""
        hasher = hashlib.new(digest.algorithm)
        length = 0
        try:
            async for chunk in self._storage.read(blob_key(digest)):
                if len(chunk) >= _THREAD_CHUNK:
                    await anyio.to_thread.run_sync(hasher.update, chunk)
                else:
                    hasher.update(chunk)
                length += len(chunk)
                if progress is not None:
                    progress(len(chunk))
        except (KeyNotFound, FileNotFoundError):
            return MISSING
        if length != size or hasher.hexdigest() != digest.hex:
            return CORRUPTED
        return None

    async def _quarantine(self, digest: Digest, size: int) -> bool:
        """Under the blob's row lock: check again, then move any bytes aside and mark the
        row; whether it was quarantined (an upload may have repaired it meanwhile)."""
        async with self._store.write(changes=Changes.CONTENT) as tx:
            if not await tx.blobs.lock_blob(str(digest)):
                return False
            if await self._check(digest, size, None) is None:
                return False
            await self._move_aside(digest)
            await tx.blobs.quarantine_blob(str(digest))
        return True

    async def _move_aside(self, digest: Digest) -> None:
        """Stream the damaged bytes to the quarantine key, then remove them."""
        key = blob_key(digest)
        if await self._storage.stat(key) is None:
            return
        state = await self._storage.begin_upload(str(uuid.uuid4()))
        writer = await self._storage.open_upload(state, 0)
        length = 0
        try:
            async for chunk in self._storage.read(key):
                await writer.write([chunk])
                length += len(chunk)
        except BaseException:
            await writer.abort()
            await self._storage.abort_upload(state)
            raise
        state = await writer.close()
        await self._storage.commit_upload(state, quarantine_key(digest), length)
        await self._storage.delete(key)

    async def _damage(self, digest: str, kind: str, repair: bool) -> Damage:
        async with self._store.read() as tx:
            images = (await tx.blobs.images_using([digest])).get(digest, [])
        note = ""
        if repair:
            note = "no replica to restore it from; push the image (or the blob) again"
        return Damage(digest, kind, tuple(images), repaired=False, note=note)
