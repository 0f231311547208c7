"""The job queue: leased background work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from cargohold.domain.scans import Job
from cargohold.metadata.schema import (
    jobs,
)
from cargohold.metadata.sql import SqlStore

QUEUED = "queued"


RUNNING = "running"


DONE = "done"


GAVE_UP = "failed"


class SqlJobs(SqlStore):
    """The job queue: leased background work."""

    async def enqueue(
        self, kind: str, payload: Mapping[str, Any], now: float, *, run_after: float | None = None
    ) -> int:
        result = await self.conn.execute(
            sa.insert(jobs)
            .values(
                kind=kind,
                payload=dict(payload),
                status=QUEUED,
                attempts=0,
                run_after=now if run_after is None else run_after,
                created_at=now,
            )
            .returning(jobs.c.id)
        )
        return int(result.scalar_one())

    async def ensure_job(self, kind: str, now: float) -> bool:
        """Queue a job of `kind` to run now unless one is queued or running already; whether
        one was queued. Writers of one database do this one at a time (PostgreSQL: an advisory
        lock on the kind; SQLite: its single writer), so the kind never has two."""
        if self._postgres:
            await self.conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"jobs:{kind}")))
            )
        pending = await self.conn.execute(
            sa.select(jobs.c.id)
            .where(jobs.c.kind == kind, jobs.c.status.in_([QUEUED, RUNNING]))
            .limit(1)
        )
        if pending.first() is not None:
            return False
        await self.enqueue(kind, {}, now)
        return True

    async def requeue_job(
        self, job_id: int, node: str, run_after: float, *, error: str | None = None
    ) -> bool:
        """Queue a job `node` ran once more, as new (no attempts), to run at `run_after`;
        false when `node` no longer holds it."""
        result = await self.conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claimed_by == node, jobs.c.status == RUNNING)
            .values(
                status=QUEUED,
                run_after=run_after,
                attempts=0,
                lease_until=None,
                claimed_by=None,
                error=error,
            )
        )
        return bool(result.rowcount)

    async def has_due_job(self, now: float) -> bool:
        """Whether `claim` would find a job: asked in a read transaction, so idle runners
        polling do not take SQLite's write lock."""
        query = sa.select(jobs.c.id).where(self._due(now)).limit(1)
        return (await self.conn.execute(query)).first() is not None

    @staticmethod
    def _due(now: float) -> sa.ColumnElement[bool]:
        return sa.or_(
            sa.and_(jobs.c.status == QUEUED, jobs.c.run_after <= now),
            sa.and_(jobs.c.status == RUNNING, jobs.c.lease_until < now),
        )

    async def claim(self, node: str, now: float, lease: float) -> Job | None:
        """The oldest job that is due, or whose runner's lease ran out, now leased to `node`."""
        query = sa.select(jobs).where(self._due(now)).order_by(jobs.c.id).limit(1)
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        row = (await self.conn.execute(query)).first()
        if row is None:
            return None
        await self.conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == row.id)
            .values(
                status=RUNNING,
                attempts=row.attempts + 1,
                lease_until=now + lease,
                claimed_by=node,
            )
        )
        return Job(row.id, row.kind, dict(row.payload or {}), row.attempts + 1)

    async def extend_lease(self, job_id: int, node: str, until: float) -> bool:
        result = await self.conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claimed_by == node, jobs.c.status == RUNNING)
            .values(lease_until=until)
        )
        return bool(result.rowcount)

    async def finish_job(
        self,
        job_id: int,
        node: str,
        now: float,
        *,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Done (no error), back to the queue (`retry_at`), or given up (error, no retry)."""
        if retry_at is not None:
            values: dict[str, Any] = {"status": QUEUED, "run_after": retry_at, "error": error}
        else:
            values = {"status": GAVE_UP if error else DONE, "finished_at": now, "error": error}
        await self.conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id, jobs.c.claimed_by == node)
            .values(lease_until=None, **values)
        )

    async def job_counts(self) -> dict[str, int]:
        rows = await self.conn.execute(
            sa.select(jobs.c.status, sa.func.count().label("n")).group_by(jobs.c.status)
        )
        return {row.status: int(row.n) for row in rows}

    async def delete_finished_jobs(self, before: float) -> int:
        result = await self.conn.execute(
            sa.delete(jobs).where(jobs.c.status.in_([DONE, GAVE_UP]), jobs.c.finished_at < before)
        )
        return int(result.rowcount or 0)
