"""Pull times: noted in memory and written in batches (a pull never writes on its own), seen at
once by the process that noted them, only moving forward, at most once a resolution period;
pull-time exclusions keep their principals' pulls from moving them."""

from __future__ import annotations

from typing import Any

import pytest

from cargohold.domain.errors import (
    ExclusionAlreadyExists,
    ExclusionNotFound,
    InvalidParameter,
)
from cargohold.domain.principal import ASSUMED_ROLE_PRINCIPAL, Principal
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.ports.storage import MetadataUnavailable
from cargohold.service.content import ContentService
from cargohold.service.pull_times import PULL_TIME_RESOLUTION, PullTimes
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.images import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, image_manifest

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
USER = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/ci", "AIDACI")
ROBOT = Principal(
    ACCOUNT,
    f"arn:aws:sts::{ACCOUNT}:assumed-role/scanner/s1",
    "AROASCANNER:s1",
    kind=ASSUMED_ROLE_PRINCIPAL,
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/scanner",
)


async def image(
    content: ContentService, uploads: UploadService, repo: Repository, seed: str = "a"
) -> bytes:
    """An image manifest whose blobs are recorded, without bytes (pulls never read them)."""
    config, layer = f'{{"seed": "{seed}"}}'.encode(), f"layer {seed}".encode()
    descriptors = Descriptor.of(OCI_CONFIG, config), Descriptor.of(OCI_LAYER, layer)
    async with content._store.write() as tx:
        for descriptor in descriptors:
            await tx.blobs.add_blob(repo.id, descriptor.digest, descriptor.size, 0.0)
    return image_manifest(descriptors[0], [descriptors[1]])


async def stored_pull(store: MetadataStore, repo: Repository, digest: str) -> float | None:
    async with store.read() as tx:
        manifest = await tx.manifests.get_manifest(repo.id, digest)
    assert manifest is not None
    return manifest.last_pulled_at


async def test_pulls_are_written_in_batches(
    store: MetadataStore,
    storage: FilesystemDriver,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
) -> None:
    # A flush interval longer than the test: only `flush` (or `close`) writes.
    batched = PullTimes(store, lambda: now[0], flush_interval=3600)
    content = ContentService(
        store, storage, lambda: now[0], registry_id=ACCOUNT, pull_times=batched
    )
    digests = []
    for tag in ("a", "b", "c"):
        raw = await image(content, uploads, repo, seed=tag)
        digests.append((await content.put_manifest(repo, tag, raw, OCI_MANIFEST)).manifest.digest)
    for _ in range(50):
        for tag in ("a", "b", "c"):
            await content.record_pull(await content.manifest(repo, tag), USER)
    # Nothing written yet, but this process answers with what it noted.
    assert [await stored_pull(store, repo, d) for d in digests] == [None] * 3
    assert (await content.manifest(repo, "a")).last_pulled_at == now[0]
    await content.pull_times.flush()
    assert [await stored_pull(store, repo, d) for d in digests] == [now[0]] * 3


class _RefusingStore:
    """The store, but its next `refusals` writes fail as an unreachable database's would."""

    def __init__(self, store: MetadataStore, refusals: int) -> None:
        self._store = store
        self.refusals = refusals

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, **kwargs: Any) -> Any:
        if self.refusals:
            self.refusals -= 1
            raise MetadataUnavailable("the metadata database cannot be reached")
        return self._store.write(**kwargs)


async def test_a_batch_that_cannot_be_written_is_written_with_the_next(
    store: MetadataStore,
    storage: FilesystemDriver,
    uploads: UploadService,
    repo: Repository,
    now: list[float],
) -> None:
    refusing = _RefusingStore(store, refusals=2)
    times = PullTimes(refusing, lambda: now[0], flush_interval=3600)  # type: ignore[arg-type]
    content = ContentService(store, storage, lambda: now[0], registry_id=ACCOUNT, pull_times=times)
    raw = await image(content, uploads, repo)
    digest = (await content.put_manifest(repo, "a", raw, OCI_MANIFEST)).manifest.digest
    await content.record_pull(await content.manifest(repo, "a"), USER)
    await times.flush()
    await times.flush()
    assert refusing.refusals == 0
    assert await stored_pull(store, repo, digest) is None
    await times.flush()
    assert await stored_pull(store, repo, digest) == now[0]
    await times.close()


async def test_a_pull_time_only_moves_forward_once_a_period(
    store: MetadataStore,
    now: list[float],
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
) -> None:
    raw = await image(content, uploads, repo)
    manifest = (await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)).manifest
    first = now[0]
    times = PullTimes(store, lambda: now[0])
    await times.record(manifest.id, None)
    now[0] += PULL_TIME_RESOLUTION / 2
    await times.record(manifest.id, None)
    assert times.latest(manifest.id) == first
    now[0] += PULL_TIME_RESOLUTION
    await times.record(manifest.id, None)
    await times.close()
    assert await stored_pull(store, repo, manifest.digest) == now[0]
    async with store.write() as tx:
        await tx.lifecycle.record_pulls({manifest.id: first})  # an older batch, written late
    assert await stored_pull(store, repo, manifest.digest) == now[0]


async def test_excluded_principals_do_not_move_it(
    store: MetadataStore, content: ContentService, uploads: UploadService, repo: Repository
) -> None:
    raw = await image(content, uploads, repo)
    manifest = (await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)).manifest
    times = content.pull_times
    await times.register_exclusion(ACCOUNT, USER.arn)
    await times.register_exclusion(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:role/scanner")
    await content.record_pull(manifest, USER, ACCOUNT)
    await content.record_pull(manifest, ROBOT, ACCOUNT)
    await times.flush()
    assert await stored_pull(store, repo, manifest.digest) is None
    assert [e.principal_arn for e in await times.exclusions(ACCOUNT)] == [
        f"arn:aws:iam::{ACCOUNT}:role/scanner",
        USER.arn,
    ]
    await times.deregister_exclusion(ACCOUNT, USER.arn)
    await content.record_pull(manifest, USER, ACCOUNT)
    await times.flush()
    assert await stored_pull(store, repo, manifest.digest) is not None


async def test_exclusion_errors(content: ContentService) -> None:
    times = content.pull_times
    await times.register_exclusion(ACCOUNT, USER.arn)
    with pytest.raises(ExclusionAlreadyExists):
        await times.register_exclusion(ACCOUNT, USER.arn)
    with pytest.raises(ExclusionNotFound):
        await times.deregister_exclusion(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/nobody")
    with pytest.raises(InvalidParameter):
        await times.register_exclusion(ACCOUNT, "arn:aws:s3:::bucket")
