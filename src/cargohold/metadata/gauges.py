"""The numbers the metrics read from the database (`cargohold.metrics_gauges`): open upload
sessions, the job queue by kind, the bytes each repository holds and how far each webhook
target is behind the event outbox. A few aggregate queries in one read transaction, made by
one process every `metrics_refresh_seconds`, never per scrape."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from cargohold.metadata.jobs import QUEUED, RUNNING
from cargohold.metadata.schema import (
    blobs,
    event_cursors,
    event_outbox,
    jobs,
    repositories,
    repository_blobs,
    uploads,
)


@dataclass(frozen=True, slots=True)
class DatabaseGauges:
    #: Upload sessions not yet committed, cancelled or expired.
    open_uploads: int = 0
    #: Per job kind (each kind the queue holds a row of, finished or not): jobs due and waiting
    #: for a runner.
    queued: dict[str, int] = field(default_factory=dict)
    #: Per job kind: jobs a runner holds.
    running: dict[str, int] = field(default_factory=dict)
    #: Per (registry id, repository name): the bytes of the blobs linked to it, each counted
    #: once per repository (a layer two repositories share counts in both).
    storage_bytes: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Per webhook target (each with a delivery cursor): the outbox's events after its cursor,
    #: those its pattern will skip included.
    events_behind: dict[str, int] = field(default_factory=dict)


async def read_gauges(conn: AsyncConnection, *, now: float, upload_expiry: float) -> DatabaseGauges:
    """The gauges as of `now`; sessions idle for `upload_expiry` seconds count as expired."""
    open_uploads = await conn.scalar(
        sa.select(sa.func.count())
        .select_from(uploads)
        .where(uploads.c.updated_at >= now - upload_expiry)
    )
    due = sa.and_(jobs.c.status == QUEUED, jobs.c.run_after <= now)
    rows = await conn.execute(
        sa.select(
            jobs.c.kind,
            sa.func.sum(sa.case((due, 1), else_=0)),
            sa.func.sum(sa.case((jobs.c.status == RUNNING, 1), else_=0)),
        ).group_by(jobs.c.kind)
    )
    queued: dict[str, int] = {}
    running: dict[str, int] = {}
    for kind, waiting, taken in rows:  # every kind with a row, finished jobs' kinds too
        queued[kind] = int(waiting or 0)
        running[kind] = int(taken or 0)
    sizes = await conn.execute(
        sa.select(
            repositories.c.registry_id,
            repositories.c.name,
            sa.func.coalesce(sa.func.sum(blobs.c.size), 0),
        )
        .select_from(
            repositories.outerjoin(
                repository_blobs, repository_blobs.c.repository_id == repositories.c.id
            ).outerjoin(blobs, blobs.c.digest == repository_blobs.c.digest)
        )
        .group_by(repositories.c.id, repositories.c.registry_id, repositories.c.name)
    )
    storage = {(registry, name): int(size) for registry, name, size in sizes}
    newest = int(await conn.scalar(sa.select(sa.func.max(event_outbox.c.id))) or 0)
    cursors = await conn.execute(sa.select(event_cursors.c.target, event_cursors.c.last_id))
    behind = {target: max(newest - int(last_id), 0) for target, last_id in cursors}
    return DatabaseGauges(int(open_uploads or 0), queued, running, storage, behind)
