"""The ECR events the services write, on SQLite and PostgreSQL: exactly the outbox rows a push,
a tag move, a push by digest, PutImage, deletes (`/v2/` and BatchDeleteImage), an immutable tag
refused, a lifecycle run and a scan leave, each in the transaction of its change; a push that
rolls back leaves none. Pruning keeps what is recent or not yet given to every target."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
import sqlalchemy as sa

from cargohold.app import build_content
from cargohold.config import Config
from cargohold.domain.ecrevents import EcrEvent, image_action
from cargohold.domain.errors import ImageTagAlreadyExists, ManifestUnknown
from cargohold.domain.records import Repository
from cargohold.domain.scans import COMPLETE, UNSUPPORTED_IMAGE
from cargohold.metadata.store import MetadataStore
from cargohold.ports import Metadata, Transaction
from cargohold.service.content import ContentService
from cargohold.service.events import EventRetention, follow_outbox
from cargohold.service.image_ids import ImageId
from cargohold.service.images import ImageService
from cargohold.service.lifecycle import LifecycleService
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.images import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Descriptor, image_manifest
from support.scan_images import IMAGES
from support.scanner import Scanner, push_blob, push_image

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
START = 1_700_000_000.0
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


async def image(uploads: UploadService, repo: Repository, seed: str) -> bytes:
    config = f'{{"seed": "{seed}"}}'.encode()
    layer = f"layer {seed}".encode()
    await push_blob(uploads, repo, config)
    await push_blob(uploads, repo, layer)
    return image_manifest(
        Descriptor.of(OCI_CONFIG, config), [Descriptor.of("application/octet-stream", layer)]
    )


def digest_of(raw: bytes) -> str:
    return Descriptor.of(OCI_MANIFEST, raw).digest


async def outbox(store: MetadataStore, after: int = 0) -> list[dict[str, Any]]:
    async with store.read() as tx:
        return [json.loads(r.document) for r in await tx.outbox.events_after(after, 1000)]


async def last_id(store: MetadataStore) -> int:
    async with store.read() as tx:
        return await tx.outbox.last_event_id()


def action(
    kind: str, digest: str, tag: str | None = None, result: str = "SUCCESS", repo: str = "team/app"
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "result": result,
        "repository-name": repo,
        "image-digest": digest,
        "action-type": kind,
    }
    if tag is not None:
        detail["image-tag"] = tag
    detail["manifest-media-type"] = OCI_MANIFEST
    detail["artifact-media-type"] = CONFIG_TYPE
    return detail


def details(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert all(e["detail-type"] == "ECR Image Action" for e in events)
    return [e["detail"] for e in events]


async def test_a_push_by_tag_is_one_push_event_in_eventbridge_shape(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    raw = await image(uploads, repo, "a")
    await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    (event,) = await outbox(store)
    assert len(event.pop("id")) == 36
    assert event == {
        "version": "0",
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": ACCOUNT,
        "time": "2023-11-14T22:13:20Z",
        "region": "us-east-1",
        "resources": [],
        "detail": action("PUSH", digest_of(raw), "v1"),
    }
    # The same push again changes nothing, by tag or by digest: no event.
    await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    await content.put_manifest(repo, digest_of(raw), raw, OCI_MANIFEST)
    assert len(await outbox(store)) == 1


async def test_a_tag_moved_or_added_is_a_push_of_that_tag(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    one, two = await image(uploads, repo, "1"), await image(uploads, repo, "2")
    await content.put_manifest(repo, "latest", one, OCI_MANIFEST)
    await content.put_manifest(repo, "latest", two, OCI_MANIFEST)
    await content.put_manifest(repo, "stable", one, OCI_MANIFEST)
    assert details(await outbox(store)) == [
        action("PUSH", digest_of(one), "latest"),
        action("PUSH", digest_of(two), "latest"),
        action("PUSH", digest_of(one), "stable"),
    ]


async def test_a_push_by_digest_names_no_tag_and_put_image_pushes_too(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    raw = await image(uploads, repo, "d")
    await content.put_manifest(repo, digest_of(raw), raw, OCI_MANIFEST)
    other = await image(uploads, repo, "e")
    await ImageService(content, store).put_image(repo, other.decode(), tag="v9")
    assert details(await outbox(store)) == [
        action("PUSH", digest_of(raw)),
        action("PUSH", digest_of(other), "v9"),
    ]


async def test_deletes_through_v2_and_batch_delete_image(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    images = ImageService(content, store)
    a, b, c, d = [await image(uploads, repo, seed) for seed in "abcd"]
    for raw, tags in ((a, ["v2", "v1"]), (b, []), (c, ["c1"]), (d, ["d1", "d2"])):
        for reference in tags or [digest_of(raw)]:
            await content.put_manifest(repo, reference, raw, OCI_MANIFEST)
    pushed = await last_id(store)
    await content.delete_manifest(repo, digest_of(a))
    await content.delete_manifest(repo, "c1")
    with pytest.raises(ManifestUnknown):
        await content.delete_manifest(repo, "c1")
    result = await images.batch_delete_image(
        repo, [ImageId(digest_of(b)), ImageId(tag="d1"), ImageId(tag="missing")]
    )
    assert result.items == [ImageId(digest_of(b)), ImageId(digest_of(d), "d1")]
    assert len(result.failures) == 1
    assert details(await outbox(store, pushed)) == [
        action("DELETE", digest_of(a), "v1"),
        action("DELETE", digest_of(a), "v2"),
        action("DELETE", digest_of(c), "c1"),
        action("DELETE", digest_of(b)),
        action("DELETE", digest_of(d), "d1"),
    ]


async def test_a_delete_refused_for_an_index_is_a_delete_failure(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    child = await image(uploads, repo, "child")
    await content.put_manifest(repo, "c1", child, OCI_MANIFEST)
    listed = {"mediaType": OCI_MANIFEST, "digest": digest_of(child), "size": len(child)}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [listed]})
    await content.put_manifest(repo, "multi", index.encode(), OCI_INDEX)
    pushed = await last_id(store)
    result = await ImageService(content, store).batch_delete_image(repo, [ImageId(tag="c1")])
    assert [f.code for f in result.failures] == ["ImageReferencedByManifestList"]
    [event] = details(await outbox(store, pushed))
    assert {k: event[k] for k in ("result", "action-type", "image-digest", "image-tag")} == {
        "result": "FAILURE",
        "action-type": "DELETE",
        "image-digest": digest_of(child),
        "image-tag": "c1",
    }


async def test_an_immutable_tag_refused_is_a_push_failure(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    async with store.write() as tx:
        await tx.repositories.update_repository(repo.id, tag_mutability="IMMUTABLE")
    repo = await content.repository(repo.name)
    one, two = await image(uploads, repo, "1"), await image(uploads, repo, "2")
    await content.put_manifest(repo, "v1", one, OCI_MANIFEST)
    with pytest.raises(ImageTagAlreadyExists):
        await content.put_manifest(repo, "v1", two, OCI_MANIFEST)
    assert details(await outbox(store)) == [
        action("PUSH", digest_of(one), "v1"),
        action("PUSH", digest_of(two), "v1", result="FAILURE"),
    ]


class Boom(Exception):
    pass


class FailingHook:
    """Fails the push inside its transaction, after the manifest and its tag were written."""

    async def manifest_pushed(
        self, tx: Transaction, repository: Repository, manifest_id: int, parsed: Any, now: float
    ) -> bool:
        assert await tx.manifests.tag_target(repository.id, "v1") == manifest_id
        raise Boom

    def pushed(self) -> None:
        raise AssertionError("a failed push has nothing to follow up")


async def test_a_rolled_back_push_writes_no_event(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    raw = await image(uploads, repo, "r")
    content.push_hook = FailingHook()
    with pytest.raises(Boom):
        await content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    assert await outbox(store) == []
    with pytest.raises(ManifestUnknown):
        await content.manifest(repo, "v1")


async def test_a_lifecycle_expiry_is_the_cloudtrail_record_ecr_sends(
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    store: MetadataStore,
    now: list[float],
) -> None:
    old, new = await image(uploads, repo, "old"), await image(uploads, repo, "new")
    await content.put_manifest(repo, "old", old, OCI_MANIFEST)
    now[0] += 60
    await content.put_manifest(repo, "new", new, OCI_MANIFEST)
    pushed = await last_id(store)
    lifecycle = LifecycleService(store, lambda: now[0], region="us-east-1")
    rule = {
        "rulePriority": 1,
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
        "action": {"type": "expire"},
    }
    await lifecycle.put_policy(repo, json.dumps({"rules": [rule]}))
    assert len((await lifecycle.run(repo)).actions) == 1
    (event,) = await outbox(store, pushed)
    assert event["detail-type"] == "AWS Service Event via CloudTrail"
    assert event["source"] == "aws.ecr" and event["resources"] == []
    record = event["detail"]
    assert record["eventName"] == "PolicyExecutionEvent"
    assert record["eventType"] == "AwsServiceEvent"
    (expired,) = record["serviceEventDetails"]["lifecycleEventImageActions"]
    assert expired["lifecycleEventImage"]["digest"] == digest_of(old)
    assert record["serviceEventDetails"]["repositoryName"] == repo.name
    async with store.read() as tx:
        columns = "SELECT repository_name, detail_type FROM event_outbox ORDER BY id DESC"
        row = (await tx.conn.execute(sa.text(columns))).first()
    assert row is not None and tuple(row) == (repo.name, "AWS Service Event via CloudTrail")
    # A run with nothing to do reports nothing.
    await lifecycle.run(repo)
    assert len(await outbox(store, pushed)) == 1


async def test_a_scan_that_ends_is_an_image_scan_event(
    scanner: Scanner,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    store: MetadataStore,
) -> None:
    repo = await scanner.scan_on_push(repo)
    digest, _ = await push_image(content, uploads, repo, IMAGES["debian"](), tag="v1")
    pushed = await last_id(store)
    await scanner.drain()
    scan, sbom = await outbox(store, pushed)
    state = (await scanner.findings.describe_findings(repo, ImageId(digest))).state
    assert scan["detail-type"] == "ECR Image Scan"
    assert scan["resources"] == [f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app"]
    assert scan["detail"] == {
        "scan-status": COMPLETE,
        "repository-name": "team/app",
        "finding-severity-counts": state.severity_counts,
        "image-digest": digest,
        "image-tags": ["v1"],
    }
    assert state.severity_counts and all(state.severity_counts.values())
    # The SBOM the scan attaches is a referrer pushed by digest, reported as any push is.
    assert sbom["detail"]["action-type"] == "PUSH" and "image-tag" not in sbom["detail"]
    assert sbom["detail"]["artifact-media-type"] == "application/vnd.cyclonedx+json"


async def test_an_unsupported_image_scan_ends_with_its_status(
    scanner: Scanner,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    store: MetadataStore,
) -> None:
    repo = await scanner.scan_on_push(repo)
    digest, _ = await push_image(content, uploads, repo, IMAGES["unsupported"]())
    pushed = await last_id(store)
    await scanner.drain()
    (scan,) = await outbox(store, pushed)
    assert scan["detail-type"] == "ECR Image Scan"
    assert scan["detail"]["scan-status"] == UNSUPPORTED_IMAGE
    assert scan["detail"]["finding-severity-counts"] == {}
    assert scan["detail"]["image-tags"] == [] and scan["detail"]["image-digest"] == digest


async def test_pruning_keeps_recent_events_and_those_a_cursor_has_not_passed(
    store: MetadataStore, now: list[float]
) -> None:
    retention = EventRetention(store, lambda: now[0], retention=100.0)
    assert retention.interval == 100.0
    assert EventRetention(store, lambda: now[0], retention=7 * 86400.0).interval == 3600.0

    def pushed(tag: str, age: float) -> EcrEvent:
        return image_action(
            "PUSH",
            account=ACCOUNT,
            region="us-east-1",
            repository="team/app",
            digest="sha256:" + "e" * 64,
            tag=tag,
            now=now[0] - age,
        )

    async with store.write() as tx:
        await tx.outbox.append_events([pushed("old-1", 200), pushed("old-2", 150)])
        await tx.outbox.append_events([pushed("recent", 10)])
    # No delivery target yet: age alone decides.
    assert await retention.prune() == 2
    assert [e["detail"]["image-tag"] for e in await outbox(store)] == ["recent"]
    now[0] += 1000
    async with store.write() as tx:
        await tx.outbox.append_events([pushed("a", 500), pushed("b", 500)])
        _recent, a, b = await tx.outbox.events_after(0, 10)
        assert await tx.outbox.advance_cursor("slow", 0, a.id, now[0])
        assert await tx.outbox.advance_cursor("fast", 0, b.id, now[0])
    # Everything is old now, but the slow target has not been given b.
    await retention.run()
    assert [e["detail"]["image-tag"] for e in await outbox(store)] == ["b"]


async def test_the_region_of_the_events_is_the_configured_one(
    store: MetadataStore, storage: FilesystemDriver, repo: Repository, tmp_path: Path
) -> None:
    config = Config(account_id=ACCOUNT, region="eu-west-1", data_dir=str(tmp_path))
    services = build_content(config, store, storage, lambda: START)
    raw = await image(services.uploads, repo, "r")
    await services.content.put_manifest(repo, "v1", raw, OCI_MANIFEST)
    (event,) = await outbox(store)
    assert event["region"] == "eu-west-1" and event["account"] == ACCOUNT


async def test_a_scan_started_on_an_artifact_ends_at_once_with_its_event(
    scanner: Scanner,
    content: ContentService,
    uploads: UploadService,
    repo: Repository,
    store: MetadataStore,
) -> None:
    config = b'{"kind": "not an image"}'
    await push_blob(uploads, repo, config)
    raw = image_manifest(Descriptor.of("application/vnd.example.config+json", config), [])
    await content.put_manifest(repo, "art", raw, OCI_MANIFEST)
    pushed = await last_id(store)
    await scanner.runner.start_image_scan(repo, ImageId(tag="art"))
    (scan,) = await outbox(store, pushed)
    assert scan["detail-type"] == "ECR Image Scan"
    assert scan["detail"]["scan-status"] == UNSUPPORTED_IMAGE
    assert scan["detail"]["image-tags"] == ["art"]
    assert scan["detail"]["image-digest"] == digest_of(raw)


class CountedReads:
    """The store's reads, counted; read number `stop_at` sets `stop` while it is under way."""

    def __init__(self, store: MetadataStore, stop: anyio.Event, stop_at: int) -> None:
        self.store = store
        self.stop = stop
        self.stop_at = stop_at
        self.reads = 0

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        self.reads += 1
        async with self.store.read() as tx:
            if self.reads == self.stop_at:
                self.stop.set()
            yield tx


async def test_following_the_outbox_yields_later_events_and_stops_after_the_read_under_way(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    first, second = await image(uploads, repo, "f1"), await image(uploads, repo, "f2")
    await content.put_manifest(repo, "one", first, OCI_MANIFEST)
    stop = anyio.Event()
    counted = CountedReads(store, stop, stop_at=2)
    seen = []
    with anyio.fail_after(10):
        async for record in follow_outbox(
            cast(Metadata, counted), 0, follow=True, interval=0.01, stop=stop
        ):
            seen.append(json.loads(record.document)["detail"])
            if len(seen) == 1:
                await content.put_manifest(repo, "two", second, OCI_MANIFEST)
    # The second read saw the second push although `stop` was set during it; none followed.
    assert seen == [
        action("PUSH", digest_of(first), "one"),
        action("PUSH", digest_of(second), "two"),
    ]
    assert counted.reads == 2


async def test_following_the_outbox_wakes_from_its_interval_when_asked_to_stop(
    content: ContentService, uploads: UploadService, repo: Repository, store: MetadataStore
) -> None:
    await content.put_manifest(repo, "one", await image(uploads, repo, "w"), OCI_MANIFEST)
    stop = anyio.Event()
    counted = CountedReads(store, stop, stop_at=0)
    seen = 0
    with anyio.fail_after(10):  # the interval is an hour
        async for _ in follow_outbox(
            cast(Metadata, counted), 0, follow=True, interval=3600, stop=stop
        ):
            seen += 1
            stop.set()
    assert (seen, counted.reads) == (1, 1)
