"""Upload sessions expire, on SQLite and PostgreSQL: a session idle past the expiry is unknown
and the sweep removes it with its staged bytes; staged bytes no session names go once they are
as old as the expiry; an append streaming across the deadline is left alone; open sessions per
repository are bounded; and the sweep is one periodic job however many runners share the table.

The services' clock is the test's; a staging file's age is its modification time, which the
tests set to the moment on that clock its bytes were written."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from cargohold.domain.errors import BlobUploadUnknown, TooManyUploads
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.layers import LayerService
from cargohold.service.upload_expiry import EXPIRE_UPLOADS, UploadExpiry
from cargohold.service.uploads import SLICE, UploadService
from cargohold.storage.filesystem import FilesystemDriver
from cargohold.storage.s3 import MIN_PART, S3Driver
from cargohold.storage.s3client import S3Settings
from support.seaweed import Seaweed

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

EXPIRY = 3600.0


@pytest.fixture
def now() -> list[float]:
    """The services' clock, starting at the real time so fresh staging files are fresh on it."""
    return [time.time()]


@pytest.fixture
def uploads(store: MetadataStore, storage: FilesystemDriver, now: list[float]) -> UploadService:
    return UploadService(store, storage, lambda: now[0], expiry=EXPIRY, max_open=3)


@pytest.fixture
def expiry(store: MetadataStore, storage: FilesystemDriver, now: list[float]) -> UploadExpiry:
    return UploadExpiry(store, storage, lambda: now[0], expiry=EXPIRY)


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def staging(storage: FilesystemDriver, upload_id: str) -> Path:
    return storage.root / "_uploads" / upload_id


def written_at(storage: FilesystemDriver, upload_id: str, when: float) -> None:
    """Date the upload's staged bytes to `when`, as if last written then."""
    os.utime(staging(storage, upload_id), (when, when))


def staged_ids(storage: FilesystemDriver) -> set[str]:
    return {path.name for path in (storage.root / "_uploads").iterdir()}


async def session_exists(store: MetadataStore, upload_id: str) -> bool:
    async with store.read() as tx:
        return await tx.uploads.get_upload(upload_id) is not None


async def test_an_idle_session_is_unknown_and_swept_with_its_bytes(
    uploads: UploadService,
    expiry: UploadExpiry,
    store: MetadataStore,
    storage: FilesystemDriver,
    repo: Repository,
    now: list[float],
) -> None:
    start = now[0]
    idle = await uploads.start(repo)
    await uploads.append(repo, idle.id, body(os.urandom(SLICE + 5)))
    written_at(storage, idle.id, start)
    now[0] = start + EXPIRY / 2
    active = await uploads.start(repo)
    await uploads.append(repo, active.id, body(b"kept"))
    written_at(storage, active.id, now[0])

    now[0] = start + EXPIRY + 1
    for call in (
        uploads.get(repo, idle.id),
        uploads.append(repo, idle.id, body(b"more")),
        uploads.finish(repo, idle.id, "sha256:" + "0" * 64, None),
    ):
        with pytest.raises(BlobUploadUnknown):
            await call
    assert (await uploads.get(repo, active.id)).offset == 4

    assert await expiry.sweep() == (1, 0)
    assert not await session_exists(store, idle.id)
    assert staged_ids(storage) == {active.id}
    committed = await uploads.finish(
        repo, active.id, "sha256:" + hashlib.sha256(b"kept").hexdigest(), None
    )
    assert committed.size == 4
    assert await expiry.sweep() == (0, 0)


async def test_the_layer_api_answers_upload_not_found_after_expiry(
    uploads: UploadService, store: MetadataStore, repo: Repository, now: list[float]
) -> None:
    layers = LayerService(store, uploads)
    upload_id, _ = await layers.initiate_upload(repo)
    assert await layers.upload_part(repo, upload_id, 0, 3, b"part") == 3
    now[0] += EXPIRY + 1
    with pytest.raises(BlobUploadUnknown, match="does not exist"):
        await layers.upload_part(repo, upload_id, 4, 7, b"more")
    with pytest.raises(BlobUploadUnknown, match="does not exist"):
        await layers.complete_upload(repo, upload_id, ["sha256:" + "0" * 64])


async def test_an_append_streaming_across_the_deadline_is_left_alone(
    uploads: UploadService,
    expiry: UploadExpiry,
    store: MetadataStore,
    storage: FilesystemDriver,
    repo: Repository,
    now: list[float],
) -> None:
    """The session's row is older than the cutoff, but its staging is being written: the sweep
    leaves both, and the append completes."""
    start = now[0]
    upload = await uploads.start(repo)
    streaming, release = anyio.Event(), anyio.Event()
    data = os.urandom(SLICE) + b"tail"

    async def slow() -> AsyncIterator[bytes]:
        yield data[:SLICE]
        streaming.set()
        await release.wait()
        yield data[SLICE:]

    async with anyio.create_task_group() as group:
        group.start_soon(uploads.append, repo, upload.id, slow())
        await streaming.wait()
        now[0] = start + EXPIRY + 10
        written_at(storage, upload.id, now[0] - 1)  # its writes keep the staging fresh
        assert await expiry.sweep() == (0, 0)
        release.set()
    assert await session_exists(store, upload.id)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert (await uploads.finish(repo, upload.id, digest, None)).size == len(data)


async def test_staged_bytes_no_session_names_go_once_as_old_as_the_expiry(
    uploads: UploadService,
    expiry: UploadExpiry,
    storage: FilesystemDriver,
    repo: Repository,
    now: list[float],
) -> None:
    old_orphan, young_orphan = str(uuid.uuid4()), str(uuid.uuid4())
    for orphan in (old_orphan, young_orphan):
        staging(storage, orphan).write_bytes(os.urandom(1000))
    written_at(storage, old_orphan, now[0] - EXPIRY - 1)
    written_at(storage, young_orphan, now[0] - EXPIRY + 60)
    # A session whose staging is old but which is itself fresh: kept.
    session = await uploads.start(repo)
    written_at(storage, session.id, now[0] - EXPIRY - 1)
    # Something in the staging area that is no upload's name: never touched.
    (storage.root / "_uploads" / "not.an.upload").write_bytes(b"x")

    assert await expiry.sweep() == (0, 1)
    assert staged_ids(storage) == {young_orphan, session.id, "not.an.upload"}
    now[0] += 61
    assert await expiry.sweep() == (0, 1)
    assert staged_ids(storage) == {session.id, "not.an.upload"}


async def test_open_sessions_are_bounded_per_repository(
    uploads: UploadService,
    content: ContentService,
    storage: FilesystemDriver,
    repo: Repository,
    now: list[float],
) -> None:
    started = [await uploads.start(repo) for _ in range(3)]
    with pytest.raises(TooManyUploads, match="3 open upload sessions"):
        await uploads.start(repo)
    assert staged_ids(storage) == {upload.id for upload in started}  # nothing left of it
    other = await content.repository_for_push("team/other")
    await uploads.start(other)
    await uploads.cancel(repo, started[0].id)
    replacement = await uploads.start(repo)
    with pytest.raises(TooManyUploads):
        await uploads.start(repo)
    # Sessions that expired count no more, even before the sweep removes them.
    now[0] += EXPIRY / 2
    await uploads.append(repo, replacement.id, body(b"busy"))
    now[0] += EXPIRY / 2 + 1
    await uploads.start(repo)
    await uploads.start(repo)  # with `replacement`, three live sessions
    with pytest.raises(TooManyUploads):
        await uploads.start(repo)


async def test_the_sweep_is_one_job_however_many_runners_share_the_table(
    store: MetadataStore, expiry: UploadExpiry, now: list[float]
) -> None:
    runs: list[float] = []

    async def run(payload: dict[str, Any]) -> None:
        runs.append(now[0])
        await expiry.run(payload)

    kind = JobKind(run, every=expiry.interval)
    runners = [JobRunner(store, lambda: now[0], {EXPIRE_UPLOADS: kind}) for _ in range(10)]
    async with anyio.create_task_group() as group:
        for runner in runners:
            group.start_soon(runner.ensure_periodic)
    async with store.read() as tx:
        assert await tx.jobs.job_counts() == {"queued": 1}

    for _ in range(3):
        ran = [await runner.run_one() for runner in runners]
        assert ran.count(True) == 1
        assert not any([await runner.run_one() for runner in runners])  # not due yet
        now[0] += expiry.interval
    assert len(runs) == 3
    assert runs[1] - runs[0] == expiry.interval == EXPIRY
    for runner in runners:  # a restart queues no second copy
        await runner.ensure_periodic()
    async with store.read() as tx:
        assert await tx.jobs.job_counts() == {"queued": 1}


async def test_a_failed_periodic_run_is_tried_again_next_period(
    store: MetadataStore, now: list[float]
) -> None:
    outcomes: list[str] = []

    async def flaky(payload: dict[str, Any]) -> None:
        outcomes.append("ran")
        if len(outcomes) <= 4:
            raise OSError("disk went away")

    runner = JobRunner(store, lambda: now[0], {"flaky": JobKind(flaky, every=60.0)})
    await runner.ensure_periodic()
    for _ in range(6):  # more failures in a row than any kind's max_attempts
        assert await runner.run_one()
        assert not await runner.run_one()
        now[0] += 60
    assert outcomes == ["ran"] * 6
    async with store.read() as tx:
        assert await tx.jobs.job_counts() == {"queued": 1}


async def test_a_periodic_job_whose_node_died_is_taken_up_by_another(
    store: MetadataStore, now: list[float]
) -> None:
    ran: list[str] = []

    async def run(payload: dict[str, Any]) -> None:
        ran.append("run")

    kinds = {"tick": JobKind(run, every=30.0)}
    runner = JobRunner(store, lambda: now[0], kinds, lease=60.0)
    await runner.ensure_periodic()
    for _ in range(5):  # claimed by nodes that die mid-run, each time
        async with store.write() as tx:
            assert await tx.jobs.claim("dead-node", now[0], 60.0) is not None
        now[0] += 61
    assert await runner.run_one()
    assert ran == ["run"]
    async with store.read() as tx:
        assert await tx.jobs.job_counts() == {"queued": 1}


async def test_expired_and_cancelled_sessions_abort_their_s3_multipart_uploads(
    store: MetadataStore, repo: Repository, now: list[float], seaweed: Seaweed
) -> None:
    """On the s3 driver a session is a multipart upload and a tail object: a cancel and the
    sweep of an expired session leave neither behind."""
    bucket = seaweed.new_bucket()
    settings = S3Settings(
        bucket=bucket,
        endpoint_url=seaweed.endpoint,
        region="us-east-1",
        path_style=True,
        access_key_id=seaweed.access_key,
        secret_access_key=seaweed.secret_key,
    )
    storage = S3Driver(settings, part_size=MIN_PART)
    uploads = UploadService(store, storage, lambda: now[0], expiry=EXPIRY)
    expiry = UploadExpiry(store, storage, lambda: now[0], expiry=EXPIRY)
    client = seaweed.client()

    def multiparts() -> int:
        return len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))

    cancelled, expired = await uploads.start(repo), await uploads.start(repo)
    for each in (cancelled, expired):
        await uploads.append(repo, each.id, body(os.urandom(MIN_PART + 1000)))
    assert multiparts() == 2 and len(await storage.staged_uploads()) == 2
    await uploads.cancel(repo, cancelled.id)
    assert multiparts() == 1
    now[0] += EXPIRY + 60
    assert await expiry.sweep() == (1, 0)
    assert multiparts() == 0 and await storage.staged_uploads() == []
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
