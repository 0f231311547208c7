"""Online garbage collection: blobs no manifest of any repository references are deleted from
storage after a grace period, while pushes go on (deleted images, lifecycle expiry, deleted
repositories, abandoned uploads).

The race it must never lose, a blob just uploaded or mounted that is swept before the manifest
referencing it arrives, is decided in the database (docs/ARCHITECTURE.md, "Garbage
collection"):
- every use of a blob holds its row: an upload commit inserts or touches the row and, holding
  it, makes sure the bytes are at their key (bytes placed before, outside the transaction,
  and removed since are written again); a mount and a manifest push touch the rows they need
  (`touched_at`), and a push is refused when a row is gone or condemned;
- a blob is collected in two transactions. The first locks the rows still untouched since the
  cutoff, reads the references afresh (so it sees every push that committed while it waited),
  and condemns those no manifest references: `deleting`, repository links removed. The second
  locks the condemned rows again, deletes their bytes, then the rows. A push waiting for either
  lock finds the row condemned or gone and is refused (the client uploads again); an upload
  waiting for it writes its bytes after the rows are gone, and they stay.
- bytes no row describes (a crash between writing and committing) are claimed by inserting a
  condemned row for them first, so an upload of the same digest waits for the collector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cargohold.domain.digest import Digest
from cargohold.domain.errors import DigestInvalid
from cargohold.ports import Changes, Metadata, StorageDriver
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.paths import blob_key

log = logging.getLogger(__name__)

#: The job kind of the periodic collection.
COLLECT_GARBAGE = "collect-garbage"
#: Blobs examined per transaction.
BATCH = 200
_BLOBS_PREFIX = "blobs/"


@dataclass
class GcResult:
    #: (digest, size) of each blob removed (or, in a dry run, that would be).
    removed: list[tuple[str, int]] = field(default_factory=list)
    #: Keys of stored bytes no blob row described, removed (or that would be).
    orphans: list[tuple[str, int]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def reclaimed(self) -> int:
        return sum(size for _, size in self.removed) + sum(size for _, size in self.orphans)


def _digest_of_key(key: str) -> str | None:
    """The digest a `blobs/<algorithm>/<xx>/<hex>` key stores, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "blobs":
        return None
    try:
        digest = Digest.parse(f"{parts[1]}:{parts[3]}")
    except DigestInvalid:
        return None
    return str(digest) if blob_key(digest) == key else None


class GarbageCollector:
    def __init__(
        self,
        store: Metadata,
        storage: StorageDriver,
        clock: Callable[[], float],
        *,
        grace: float,
        interval: float = 3600.0,
    ) -> None:
        self._store = store
        self._storage = storage
        self._clock = clock
        self.grace = grace
        self.interval = interval

    def register_jobs(self, jobs: JobRunner) -> None:
        """Collect every `interval` seconds on `jobs`."""
        jobs.register(COLLECT_GARBAGE, JobKind(self.run, every=self.interval))

    async def run(self, payload: Mapping[str, Any] | None = None) -> None:
        """The periodic job."""
        result = await self.collect()
        if result.removed or result.orphans:
            log.info(
                "garbage collection removed %d blobs and %d orphaned objects, %d bytes",
                len(result.removed),
                len(result.orphans),
                result.reclaimed,
            )

    async def collect(self, *, grace: float | None = None, dry_run: bool = False) -> GcResult:
        """Collect what no manifest references and nothing touched for `grace` seconds (the
        collector's own grace when None)."""
        cutoff = self._clock() - (self.grace if grace is None else grace)
        result = GcResult(dry_run=dry_run)
        after = ""
        while True:
            async with self._store.read() as tx:
                batch = await tx.blobs.unreferenced_blobs(cutoff, after=after, limit=BATCH)
            if not batch:
                break
            after = batch[-1][0]
            if dry_run:
                result.removed += batch
            else:
                sizes = dict(batch)
                gone = await self._remove(list(sizes), cutoff)
                result.removed += [(digest, sizes[digest]) for digest in gone]
        result.orphans = await self._orphans(dry_run)
        return result

    async def _remove(self, digests: list[str], cutoff: float) -> list[str]:
        async with self._store.write(changes=Changes.CONTENT) as tx:
            condemned = await tx.blobs.condemn_blobs(digests, cutoff)
        if not condemned:
            return []
        async with self._store.write(changes=Changes.CONTENT) as tx:
            held = await tx.blobs.lock_condemned(condemned)
            for digest in held:
                await self._storage.delete(blob_key(Digest.parse(digest)))
            await tx.blobs.delete_blob_rows(held)
        return held

    async def _orphans(self, dry_run: bool) -> list[tuple[str, int]]:
        keys = await self._storage.list(_BLOBS_PREFIX)
        stored = {d: key for key in keys if (d := _digest_of_key(key)) is not None}
        digests = sorted(stored)
        orphans: list[tuple[str, int]] = []
        for start in range(0, len(digests), BATCH):
            batch = digests[start : start + BATCH]
            async with self._store.read() as tx:
                known = await tx.blobs.known_blobs(batch)
            for digest in batch:
                if digest in known:
                    continue
                info = await self._storage.stat(stored[digest])
                size = info.size if info is not None else 0
                if dry_run or await self._remove_orphan(digest, stored[digest]):
                    orphans.append((stored[digest], size))
        return orphans

    async def _remove_orphan(self, digest: str, key: str) -> bool:
        async with self._store.write(changes=Changes.NOTHING) as tx:
            if not await tx.blobs.claim_orphan(digest, self._clock()):
                return False
            await self._storage.delete(key)
            await tx.blobs.delete_blob_rows([digest])
        return True

    async def referenced_bytes(self) -> int:
        """The bytes of every blob some manifest references: what storage holds after a
        collection with nothing left to collect."""
        async with self._store.read() as tx:
            return sum((await tx.blobs.referenced_blob_sizes()).values())
