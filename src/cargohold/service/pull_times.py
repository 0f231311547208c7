"""Pull times: `lastRecordedPullTime` moves when a manifest is pulled by tag or by digest, in
batches, never with a database write on the pull's own path; and the pull-time exclusions
(Register/Deregister/ListPullTimeUpdateExclusions) whose principals never move it.

A pull is noted in memory (unless its principal is excluded, or this process noted the same
manifest less than `resolution` seconds ago), and a background task writes what was noted
every `flush_interval` seconds, in one transaction and one statement per 500 manifests; each
manifest's time only moves forward. Until then this process answers with what it noted
(`latest`), so a pull is seen at once by the process that served it and within the flush
interval by every other; ECR itself promises a refresh at least once every 24 hours. A batch
that cannot be written (the database unreachable) goes back to be written with the next, each
manifest keeping its latest time, and the writes back off (up to `_MAX_BACKOFF` seconds apart)
until one succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from cargohold.domain.errors import (
    ExclusionAlreadyExists,
    ExclusionNotFound,
    InvalidParameter,
    LimitExceeded,
)
from cargohold.domain.principal import Principal
from cargohold.ports import Changes, Metadata
from cargohold.service.readcache import ReadCache

log = logging.getLogger(__name__)

#: A manifest's pull time is refreshed at most this often by one process.
PULL_TIME_RESOLUTION = 60.0
#: Manifests whose last noted pull a process remembers (the oldest are forgotten).
_REMEMBERED = 65536
#: The longest pause between attempts to write pull times while the database refuses them.
_MAX_BACKOFF = 30.0
#: Exclusions one registry may hold.
MAX_EXCLUSIONS = 100
_PRINCIPAL_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[\w+=,.@-]+(/[\w+=,.@-]+)*"
)


@dataclass(frozen=True, slots=True)
class Exclusion:
    principal_arn: str
    created_at: float


class PullTimes:
    def __init__(
        self,
        store: Metadata,
        clock: Callable[[], float],
        *,
        resolution: float = PULL_TIME_RESOLUTION,
        flush_interval: float = 1.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._resolution = resolution
        self._flush_interval = flush_interval
        # manifest id -> the latest pull noted here (written or not).
        self._latest: dict[int, float] = {}
        # manifest id -> the pull time still to write.
        self._pending: dict[int, float] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        # Writes failed in a row (the pause before the next attempt grows with it).
        self._failures = 0
        self._closed = False
        self._exclusions: ReadCache[str, frozenset[str]] = ReadCache(
            store, name="pull-time-exclusions"
        )

    def latest(self, manifest_id: int) -> float | None:
        """The last pull of the manifest this process noted, if it remembers one."""
        return self._latest.get(manifest_id)

    async def record(
        self,
        manifest_id: int,
        recorded: float | None,
        principal: Principal | None = None,
        registry_id: str | None = None,
    ) -> None:
        """Note a pull of the manifest whose stored pull time is `recorded`."""
        now = self._clock()
        last = max(recorded or 0.0, self._latest.get(manifest_id, 0.0))
        if now - last < self._resolution:
            return  # most pulls: nothing to write, so no exclusion to look up either
        if principal is not None and await self._excluded(principal, registry_id):
            return
        if len(self._latest) >= _REMEMBERED:
            self._latest.clear()
        self._latest[manifest_id] = now
        self._pending[manifest_id] = now
        self._start_flusher()

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _excluded(self, principal: Principal, registry_id: str | None) -> bool:
        account = registry_id or principal.account_id

        async def load() -> frozenset[str]:
            async with self._store.read() as tx:
                return frozenset(await tx.lifecycle.pull_exclusions(account))

        excluded = await self._exclusions.fetch(account, load)
        if not excluded:
            return False
        return principal.arn in excluded or (
            principal.role_arn is not None and principal.role_arn in excluded
        )

    async def _flush_soon(self) -> None:
        while self._pending:
            pause = self._flush_interval * 2 ** min(self._failures, 16)
            await asyncio.sleep(min(pause, max(self._flush_interval, _MAX_BACKOFF)))
            await self.flush()

    async def flush(self) -> None:
        """Write every pull noted so far."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        write = asyncio.get_running_loop().create_task(self._write(batch))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        await asyncio.shield(write)

    async def _write(self, batch: dict[int, float]) -> None:
        try:
            async with self._store.write(changes=Changes.NOTHING) as tx:
                await tx.lifecycle.record_pulls(batch)
        except Exception:
            if not self._failures:
                log.exception("could not record the pull times of %d manifests", len(batch))
            self._failures += 1
            for manifest_id, pulled in batch.items():
                if pulled > self._pending.get(manifest_id, 0.0):
                    self._pending[manifest_id] = pulled
            if not self._closed:
                self._start_flusher()
        else:
            if self._failures:
                log.info("pull times are written again after %d failed writes", self._failures)
            self._failures = 0

    async def close(self) -> None:
        """Stop the background writes, then write what is left (once)."""
        self._closed = True
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._writes:
            await asyncio.gather(*self._writes)
        await self.flush()

    # -- exclusions ---------------------------------------------------------------------------

    async def register_exclusion(self, registry_id: str, principal_arn: str) -> Exclusion:
        _check_arn(principal_arn)
        now = self._clock()
        async with self._store.write() as tx:
            current = await tx.lifecycle.pull_exclusions(registry_id)
            if principal_arn in current:
                raise ExclusionAlreadyExists(
                    f"The pull time update exclusion for principal '{principal_arn}' already "
                    f"exists in the registry with id '{registry_id}'"
                )
            if len(current) >= MAX_EXCLUSIONS:
                raise LimitExceeded(
                    f"The registry with id '{registry_id}' has reached the limit of "
                    f"{MAX_EXCLUSIONS} pull time update exclusions"
                )
            await tx.lifecycle.add_pull_exclusion(registry_id, principal_arn, now)
        return Exclusion(principal_arn, now)

    async def deregister_exclusion(self, registry_id: str, principal_arn: str) -> str:
        _check_arn(principal_arn)
        async with self._store.write() as tx:
            if not await tx.lifecycle.delete_pull_exclusion(registry_id, principal_arn):
                raise ExclusionNotFound(
                    f"The pull time update exclusion for principal '{principal_arn}' does not "
                    f"exist in the registry with id '{registry_id}'"
                )
        return principal_arn

    async def exclusions(self, registry_id: str) -> list[Exclusion]:
        async with self._store.read() as tx:
            found = await tx.lifecycle.pull_exclusions(registry_id)
        return [Exclusion(arn, at) for arn, at in sorted(found.items())]


def _check_arn(principal_arn: str) -> None:
    # The model's pattern is checked before the call; this is for callers other than the API.
    if not _PRINCIPAL_ARN.fullmatch(principal_arn):
        raise InvalidParameter(
            "Invalid parameter at 'principalArn' failed to satisfy constraint: "
            "'must be the ARN of an IAM user or role'"
        )
