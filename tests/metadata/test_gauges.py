"""The database's gauges (open uploads, the job queue by kind, storage bytes by repository, the
webhook targets' backlogs), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cargohold.domain.digest import Digest
from cargohold.domain.ecrevents import IMAGE_ACTION, EcrEvent
from cargohold.metadata.gauges import DatabaseGauges, read_gauges
from cargohold.metadata.store import MetadataStore

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
NOW = 1_000_000.0


async def gauges(store: MetadataStore) -> DatabaseGauges:
    async with store.read() as tx:
        return await read_gauges(tx.conn, now=NOW, upload_expiry=3600)


async def test_an_empty_registry_reads_zero(store: MetadataStore) -> None:
    assert await gauges(store) == DatabaseGauges()


async def test_the_gauges_count_what_the_tables_hold(store: MetadataStore) -> None:
    shared, own = str(Digest.of(b"shared")), str(Digest.of(b"own"))
    async with store.write() as tx:
        app = await tx.repositories.create_repository(ACCOUNT, "app", 1.0)
        other = await tx.repositories.create_repository(ACCOUNT, "other", 1.0)
        await tx.repositories.create_repository(ACCOUNT, "empty", 1.0)
        await tx.blobs.add_blob(app.id, shared, 100, 1.0)
        await tx.blobs.add_blob(app.id, own, 20, 1.0)
        await tx.blobs.link_blob(other.id, shared, 1.0)
        for number, updated in enumerate((NOW - 10, NOW - 7200)):  # live, expired
            await tx.uploads.create_upload(f"upload-{number}", app.id, "sha256", None, {}, updated)
        await tx.jobs.enqueue("done-kind", {}, NOW - 3)
    async with store.write() as tx:
        done = await tx.jobs.claim("node", NOW, 60)
        assert done is not None and done.kind == "done-kind"
        await tx.jobs.finish_job(done.id, "node", NOW)
        await tx.jobs.enqueue("scan", {}, NOW - 2)  # due, then running
        await tx.jobs.enqueue("scan", {}, NOW, run_after=NOW + 60)  # not yet due
        await tx.jobs.enqueue("gc", {}, NOW - 1)  # due
    async with store.write() as tx:
        running = await tx.jobs.claim("node", NOW, 60)
        assert running is not None and running.kind == "scan"
    found = await gauges(store)
    assert found.open_uploads == 1
    assert found.storage_bytes == {
        (ACCOUNT, "app"): 120,
        (ACCOUNT, "other"): 100,
        (ACCOUNT, "empty"): 0,
    }
    assert found.running == {"scan": 1, "gc": 0, "done-kind": 0}
    assert found.queued == {"scan": 0, "gc": 1, "done-kind": 0}


async def test_a_targets_backlog_is_the_outbox_after_its_cursor(store: MetadataStore) -> None:
    detail = {"result": "SUCCESS", "repository-name": "app", "action-type": "PUSH"}
    async with store.write() as tx:
        await tx.outbox.append_events(
            [EcrEvent(IMAGE_ACTION, ACCOUNT, "us-east-1", NOW, detail) for _ in range(5)]
        )
    async with store.read() as tx:
        ids = [record.id for record in await tx.outbox.events_after(0, 10)]
    async with store.write() as tx:
        assert await tx.outbox.advance_cursor("behind", 0, ids[1], NOW)
        assert await tx.outbox.advance_cursor("current", 0, ids[-1], NOW)
    assert (await gauges(store)).events_behind == {"behind": 3, "current": 0}
