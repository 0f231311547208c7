"""Upload sessions expire: a periodic job removes sessions idle past the expiry with the bytes
they staged, and staged bytes that no session names (a crash between the two, or an older
server's leftovers).

Idle means neither the session nor its staging changed since the cutoff: an append that
streams for longer than the expiry keeps its staging's modification time fresh and is left
alone. Staged bytes without a session are removed only once they are as old as the cutoff, so
an upload whose staging exists and whose session is being recorded is never raced. The job runs
once across every process and node (the job runner's leases), every `interval` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cargohold.domain.records import Upload
from cargohold.ports import Changes, Metadata, StagedUpload, StorageDriver

log = logging.getLogger(__name__)

#: The job kind of the sweep.
EXPIRE_UPLOADS = "expire-uploads"

#: Sessions read, deleted or looked up per statement.
BATCH = 500

#: The longest time between two sweeps, whatever the expiry.
LONGEST_INTERVAL = 3600.0


def _batches(items: Sequence[StagedUpload]) -> list[Sequence[StagedUpload]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


class UploadExpiry:
    def __init__(
        self,
        store: Metadata,
        storage: StorageDriver,
        clock: Callable[[], float],
        *,
        expiry: float,
    ) -> None:
        self._store = store
        self._storage = storage
        self._clock = clock
        self._expiry = expiry

    @property
    def interval(self) -> float:
        """Seconds between sweeps: at most the expiry, and at most an hour."""
        return min(self._expiry, LONGEST_INTERVAL)

    async def run(self, payload: Mapping[str, Any] | None = None) -> None:
        """One sweep (the job's handler; it takes no payload)."""
        sessions, orphans = await self.sweep()
        if sessions or orphans:
            log.info(
                "removed %d expired upload sessions and %d staged uploads without a session",
                sessions,
                orphans,
            )

    async def sweep(self) -> tuple[int, int]:
        """Remove what expired; how many sessions, and how many staged uploads no session
        named."""
        cutoff = self._clock() - self._expiry
        staged = {each.upload_id: each for each in await self._storage.staged_uploads()}
        removed = await self._expire_sessions(cutoff, staged)
        leftovers = [
            each
            for each in staged.values()
            if each.modified_at < cutoff and each.upload_id not in removed
        ]
        orphans = await self._remove_orphans(leftovers)
        return len(removed), orphans

    async def _expire_sessions(self, cutoff: float, staged: Mapping[str, StagedUpload]) -> set[str]:
        removed: set[str] = set()
        after = ""
        while True:
            async with self._store.read() as tx:
                batch = await tx.uploads.stale_uploads(cutoff, after=after, limit=BATCH)
            if not batch:
                return removed
            after = batch[-1].id
            idle = [upload for upload in batch if not _in_use(staged.get(upload.id), cutoff)]
            removed.update(await self._delete(idle, cutoff))
            if len(batch) < BATCH:
                return removed

    async def _delete(self, idle: list[Upload], cutoff: float) -> list[str]:
        if not idle:
            return []
        async with self._store.write(changes=Changes.NOTHING) as tx:
            deleted = set(await tx.uploads.delete_stale_uploads([u.id for u in idle], cutoff))
        # Bytes only after the session: a crash between the two leaves an orphan, never a
        # session whose bytes are gone.
        for upload in idle:
            if upload.id in deleted:
                await self._storage.abort_upload(upload.driver_state)
        return [upload.id for upload in idle if upload.id in deleted]

    async def _remove_orphans(self, candidates: Sequence[StagedUpload]) -> int:
        removed = 0
        for batch in _batches(candidates):
            async with self._store.read() as tx:
                known = await tx.uploads.upload_ids_among([each.upload_id for each in batch])
            for each in batch:
                if each.upload_id not in known:
                    await self._storage.abort_upload(each.state)
                    removed += 1
        return removed


def _in_use(staged: StagedUpload | None, cutoff: float) -> bool:
    """Staging written to (or opened for writing) since the cutoff: an append is streaming."""
    return staged is not None and staged.modified_at >= cutoff
