"""The in-process runner of background jobs (scans, re-matching after a vulnerability database
import, …) over the `jobs` table.

Any node may claim any job; a claim is a lease the runner extends while the job runs, so a job
whose node died is claimed again once its lease runs out. A handler that raises is retried
(with a growing delay) up to `max_attempts`; then its kind's `give_up` records the failure
where users see it (a scan ends FAILED, never stuck IN_PROGRESS). CPU-heavy handlers take
themselves off the event loop (threads); the runner itself only awaits.

A periodic kind (`every`) has one job, queued by the first runner to start and queued again by
whichever runner ran it, so N processes and nodes run it once per period between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cargohold.domain.scans import Job
from cargohold.ports import UNOBSERVED, Changes, Metadata, Observer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobKind:
    run: Callable[[dict[str, Any]], Awaitable[None]]
    #: Called once attempts are exhausted, with the last error's text.
    give_up: Callable[[dict[str, Any], str], Awaitable[None]] | None = None
    max_attempts: int = 3
    #: A periodic kind: one job of it is kept queued across every runner of the table, and
    #: queued again this many seconds after each run ends, whatever the run's outcome.
    every: float | None = None


class JobRunner:
    def __init__(
        self,
        store: Metadata,
        clock: Callable[[], float],
        kinds: Mapping[str, JobKind] | None = None,
        *,
        concurrency: int = 2,
        poll_interval: float = 1.0,
        lease: float = 60.0,
        observer: Observer = UNOBSERVED,
    ) -> None:
        self._store = store
        self._clock = clock
        self.kinds: dict[str, JobKind] = dict(kinds or {})
        self._concurrency = concurrency
        self._poll = poll_interval
        self._lease = lease
        #: Told how long each run of a job took, by kind, and whether it failed.
        self.observer = observer
        self.node = f"node-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._beside: list[tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = []

    def attach(
        self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
    ) -> None:
        """Background work of its own (the delivery of events), started after the runner's
        workers and stopped, in the reverse order, before them."""
        self._beside.append((start, stop))

    def register(self, name: str, kind: JobKind) -> None:
        self.kinds[name] = kind

    def wake(self) -> None:
        """A job was queued on this node: look now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        await self.ensure_periodic()
        self._stopping = False
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._worker(i), name=f"jobs-{i}") for i in range(self._concurrency)
        ]
        for start, _ in self._beside:
            await start()

    async def ensure_periodic(self) -> None:
        """Queue each periodic kind's job unless some runner queued it already."""
        for name, kind in self.kinds.items():
            if kind.every is not None:
                async with self._store.write(changes=Changes.NOTHING) as tx:
                    await tx.jobs.ensure_job(name, self._clock())

    async def stop(self) -> None:
        """Stop claiming; cancel running jobs (their leases run out and another node, or this
        one after a restart, takes them up again)."""
        self._stopping = True
        for _, stop in reversed(self._beside):
            try:
                await stop()
            except Exception:
                log.exception("stopping background work failed")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _worker(self, number: int) -> None:
        while not self._stopping:
            # Cleared before looking, never after: a wake that comes while this worker looks
            # (a job queued just after its query) must end the wait that follows.
            self._wake.clear()
            try:
                ran = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker %d failed to claim a job", number)
                ran = False
            if ran:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)

    async def run_one(self) -> bool:
        """Claim and run one due job; whether there was one."""
        async with self._store.read() as tx:
            if not await tx.jobs.has_due_job(self._clock()):
                return False
        async with self._store.write(changes=Changes.NOTHING) as tx:
            job = await tx.jobs.claim(self.node, self._clock(), self._lease)
        if job is None:
            return False
        kind = self.kinds.get(job.kind)
        if kind is None:
            await self._finish(job, error=f"no handler for job kind {job.kind!r}")
            return True
        if kind.every is not None:
            await self._run_periodic(job, kind, kind.every)
            return True
        if job.attempts > kind.max_attempts:
            # Claimed again after its last attempt's lease ran out: that node died mid-job.
            await self._give_up(job, kind, "the node running it stopped before it finished")
            return True
        error = await self._run(job, kind)
        if error is None:
            await self._finish(job)
        elif job.attempts < kind.max_attempts:
            await self._finish(job, error=error, retry_at=self._clock() + 2.0**job.attempts)
        else:
            await self._give_up(job, kind, error)
        return True

    async def _run(self, job: Job, kind: JobKind) -> str | None:
        """Run the job's handler, its lease extended meanwhile; the error, if it failed."""
        heartbeat = asyncio.create_task(self._heartbeat(job))
        started = time.perf_counter()
        try:
            await kind.run(job.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("job %d (%s) attempt %d failed: %s", job.id, job.kind, job.attempts, error)
            self.observer.job_finished(job.kind, time.perf_counter() - started, failed=True)
            return error
        else:
            self.observer.job_finished(job.kind, time.perf_counter() - started, failed=False)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        return None

    async def _run_periodic(self, job: Job, kind: JobKind, every: float) -> None:
        """Run it and queue it again for its next time: the same job, so there is never more
        than one, and a failed run is simply tried again then."""
        error = await self._run(job, kind)
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.jobs.requeue_job(job.id, self.node, self._clock() + every, error=error)

    async def _give_up(self, job: Job, kind: JobKind, error: str) -> None:
        if kind.give_up is not None:
            try:
                await kind.give_up(job.payload, error)
            except Exception:
                log.exception("recording the failure of job %d failed", job.id)
        await self._finish(job, error=error)

    async def _finish(
        self, job: Job, *, error: str | None = None, retry_at: float | None = None
    ) -> None:
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.jobs.finish_job(
                job.id, self.node, self._clock(), error=error, retry_at=retry_at
            )

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            async with self._store.write(changes=Changes.NOTHING) as tx:
                await tx.jobs.extend_lease(job.id, self.node, self._clock() + self._lease)
