"""Lifecycle policies on the service layer, on real databases: what a preview says is what the
following run does (hundreds of images, several policies), time-based rules on the test clock,
scheduled runs happen once however many processes schedule them, a run's audit record, indexes,
referrers, and templates that carry a policy."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from cargohold.domain.errors import (
    LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress,
    LifecyclePolicyPreviewNotFound,
)
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.lifecycle import PREVIEW, RUN, SCHEDULE, LifecycleService
from cargohold.service.templates import TemplateService
from support.clock import Clock
from support.images import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Descriptor,
    canonical_json,
    image_manifest,
    index_manifest,
)
from support.pushes import PausedPush

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

DAY = 86400.0
START = 1_700_000_000.0
LAYER = b"a layer every image shares"


class Images:
    """Pushes images cheaply: blobs recorded without bytes (lifecycle never reads them)."""

    def __init__(self, store: MetadataStore, content: ContentService, clock: Clock) -> None:
        self.store = store
        self.content = content
        self.clock = clock

    async def push(
        self,
        repo: Repository,
        seed: str,
        tags: list[str],
        *,
        at: float,
        subject: Descriptor | None = None,
    ) -> str:
        self.clock.now = at
        config = json.dumps({"seed": seed}).encode()
        for blob in (config, LAYER):
            async with self.store.write() as tx:
                await tx.blobs.add_blob(
                    repo.id, Descriptor.of(OCI_LAYER, blob).digest, len(blob), at
                )
        document: dict[str, Any] = json.loads(
            image_manifest(Descriptor.of(OCI_CONFIG, config), [Descriptor.of(OCI_LAYER, LAYER)])
        )
        if subject is not None:
            document["subject"] = subject.to_json()
        raw = canonical_json(document)
        pushed = await self.content.put_manifest(
            repo, tags[0] if tags else _digest(raw), raw, OCI_MANIFEST
        )
        for tag in tags[1:]:
            await self.content.put_manifest(repo, tag, raw, OCI_MANIFEST)
        return pushed.manifest.digest


def _digest(raw: bytes) -> str:
    return Descriptor.of(OCI_MANIFEST, raw).digest


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def images(store: MetadataStore, storage: Any, clock: Clock) -> Images:
    content = ContentService(store, storage, clock, registry_id="123456789012", create_on_push=True)
    return Images(store, content, clock)


@pytest.fixture
def lifecycle(store: MetadataStore, clock: Clock) -> LifecycleService:
    return LifecycleService(store, clock, region="us-east-1", interval=DAY)


def rule(priority: int, action: str = "expire", **selection: Any) -> dict[str, Any]:
    shaped: dict[str, Any] = {"type": action}
    if action == "transition":
        shaped["targetStorageClass"] = "archive"
    return {
        "rulePriority": priority,
        "description": f"rule {priority}",
        "selection": selection,
        "action": shaped,
    }


def policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def age(kind: str, days: int) -> dict[str, Any]:
    return {"countType": kind, "countUnit": "days", "countNumber": days}


def count(n: int) -> dict[str, Any]:
    return {"countType": "imageCountMoreThan", "countNumber": n}


POLICIES = {
    "releases-and-untagged": policy(
        rule(1, tagStatus="tagged", tagPatternList=["release-*"], **count(20)),
        rule(2, tagStatus="untagged", **age("sinceImagePushed", 30)),
        rule(3, tagStatus="any", **count(100)),
    ),
    "archive-then-prefixes": policy(
        rule(
            1,
            "transition",
            tagStatus="tagged",
            tagPrefixList=["dev"],
            **age("sinceImagePulled", 20),
        ),
        rule(2, tagStatus="tagged", tagPrefixList=["feature", "dev"], **count(5)),
        rule(3, tagStatus="tagged", tagPatternList=["*-rc*"], **age("sinceImagePushed", 45)),
    ),
    "transition-everything-old": policy(
        rule(1, tagStatus="untagged", **count(10)),
        rule(2, "transition", tagStatus="any", **age("sinceImagePushed", 60)),
    ),
}


async def populate(images: Images, repo: Repository, n: int = 210) -> None:
    """`n` images over 120 days: releases, release candidates, dev and feature builds (some
    with two tags), untagged builds; a third of them pulled since."""
    chooser = random.Random(13)
    for i in range(n):
        kind = chooser.choice(["release", "rc", "dev", "feature", "untagged", "both"])
        tags = {
            "release": [f"release-{i}"],
            "rc": [f"v{i}-rc1"],
            "dev": [f"dev-{i}"],
            "feature": [f"feature-{i}"],
            "untagged": [],
            "both": [f"feature-{i}", f"dev-{i}"],
        }[kind]
        at = START + i * (120 * DAY / n) + 0.37 * DAY
        digest = await images.push(repo, f"{repo.name}-{i}", tags, at=at)
        if chooser.random() < 0.33:
            pulled = at + chooser.uniform(0, 120 * DAY - i * (120 * DAY / n))
            manifest = await images.content.manifest(repo, digest)
            async with images.store.write() as tx:
                await tx.lifecycle.record_pulls({manifest.id: pulled})


async def preview_results(lifecycle: LifecycleService, repo: Repository) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = await lifecycle.preview_page(repo, max_results=37, next_token=token)
        found += page.results
        token = page.next_token
        if token is None:
            return found


@pytest.mark.parametrize("name", sorted(POLICIES))
async def test_the_preview_is_what_the_run_does(
    name: str, images: Images, lifecycle: LifecycleService, clock: Clock
) -> None:
    repo = await images.content.repository_for_push(f"lifecycle/{name}")
    await populate(images, repo)
    clock.now = START + 130 * DAY
    text = POLICIES[name]
    assert await lifecycle.start_preview(repo, text) == text
    assert (await lifecycle.preview(repo)).status == "IN_PROGRESS"
    await lifecycle.compute_preview({"repository_id": repo.id})
    page = await lifecycle.preview_page(repo)
    assert page.preview.status == "COMPLETE"
    previewed = await preview_results(lifecycle, repo)
    assert len(previewed) > 20  # every policy here acts on many of the images
    await lifecycle.put_policy(repo, text)
    run = await lifecycle.run(repo)
    done = [(a.manifest.digest, a.action.upper(), a.rule.priority) for a in run.actions]
    assert done == [
        (r["imageDigest"], r["action"]["type"], r["appliedRulePriority"]) for r in previewed
    ]
    summary = page.summary
    assert summary is not None
    expired = {d for d, kind, _ in done if kind == "EXPIRE"}
    archived = {d for d, kind, _ in done if kind == "TRANSITION"}
    assert summary["expiringImageTotalCount"] == len(expired)
    assert summary.get("transitioningImageTotalCounts", [{"imageTotalCount": 0}])[0][
        "imageTotalCount"
    ] == len(archived)
    async with images.store.read() as tx:
        left = {m.digest: m.image_status for m in await tx.lifecycle.lifecycle_manifests(repo.id)}
    assert not expired & set(left)
    assert all(left[d] == "ARCHIVED" for d in archived)
    assert len(left) == 210 - len(expired)
    # Run again at once: the policy has done its work.
    again = await lifecycle.run(repo)
    assert [a for a in again.actions if a.action == "expire" or a.manifest.digest in archived] == []


async def test_time_rules_follow_the_clock(
    images: Images, lifecycle: LifecycleService, clock: Clock
) -> None:
    repo = await images.content.repository_for_push("lifecycle/time")
    old = await images.push(repo, "old", ["old"], at=START)
    middle = await images.push(repo, "middle", ["middle"], at=START + 10 * DAY)
    new = await images.push(repo, "new", ["new"], at=START + 20 * DAY)
    await lifecycle.put_policy(
        repo,
        policy(
            rule(
                1,
                "transition",
                tagStatus="tagged",
                tagPatternList=["middle"],
                **age("sinceImagePulled", 5),
            ),
            rule(2, tagStatus="tagged", tagPatternList=["*"], **age("sinceImagePushed", 14)),
        ),
    )
    # Pulled recently: the middle image is not archived yet; the old one expires.
    manifest = await images.content.manifest(repo, middle)
    async with images.store.write() as tx:
        await tx.lifecycle.record_pulls({manifest.id: START + 22 * DAY})
    clock.now = START + 25 * DAY
    first = await lifecycle.run(repo)
    assert [(a.manifest.digest, a.action) for a in first.actions] == [(old, "expire")]
    clock.now = START + 28 * DAY
    second = await lifecycle.run(repo)
    assert [(a.manifest.digest, a.action) for a in second.actions] == [(middle, "transition")]
    clock.now = START + 36 * DAY
    third = await lifecycle.run(repo)
    assert [(a.manifest.digest, a.action) for a in third.actions] == [(new, "expire")]
    stored = await lifecycle.get_policy(repo)
    assert stored.last_evaluated_at is not None and stored.last_evaluated_at >= START + 36 * DAY


async def test_runs_are_scheduled_once_across_processes(
    images: Images, store: MetadataStore, clock: Clock
) -> None:
    services = [LifecycleService(store, clock, region="us-east-1", interval=DAY) for _ in range(3)]
    repos = []
    for i in range(4):
        repo = await images.content.repository_for_push(f"lifecycle/scheduled-{i}")
        await images.push(repo, f"s{i}", [], at=START)
        await images.push(repo, f"t{i}", [], at=START + 1)
        await services[0].put_policy(repo, policy(rule(1, tagStatus="untagged", **count(1))))
        repos.append(repo)
    runners = []
    for service in services:
        runner = JobRunner(store, clock)
        runner.register(SCHEDULE, JobKind(service.schedule, every=service.schedule_interval))
        runner.register(RUN, JobKind(service.run_job))
        runner.register(PREVIEW, JobKind(service.compute_preview))
        runners.append(runner)
    # Not due yet: nothing is queued.
    await asyncio.gather(*(s.schedule() for s in services))
    assert not await any_job_ran(runners)
    clock.now = START + DAY + 10
    await asyncio.gather(*(s.schedule() for s in services))
    await asyncio.gather(*(s.schedule() for s in services))
    while await any_job_ran(runners):
        pass
    async with store.read() as tx:
        events = await tx.events.list_events("audit", limit=100)
        left = {r.id: await tx.manifests.count_manifests(r.id) for r in repos}
    runs = [e.document["serviceEventDetails"]["repositoryName"] for e in events]
    assert sorted(runs) == sorted(r.name for r in repos)  # one run each
    assert set(left.values()) == {1}


async def any_job_ran(runners: list[JobRunner]) -> bool:
    ran = await asyncio.gather(*(r.run_one() for r in runners))
    return any(ran)


async def test_a_run_is_recorded_as_ecr_records_it(
    images: Images, lifecycle: LifecycleService, clock: Clock
) -> None:
    repo = await images.content.repository_for_push("lifecycle/audit")
    gone = await images.push(repo, "gone", ["build-1"], at=START)
    pushed_at = (await images.content.manifest(repo, gone)).pushed_at
    await images.push(repo, "kept", ["build-2"], at=START + 1)
    await lifecycle.put_policy(
        repo, policy(rule(1, tagStatus="tagged", tagPrefixList=["build"], **count(1)))
    )
    clock.now = START + 100
    await lifecycle.run(repo)
    async with images.store.read() as tx:
        (event,) = [e.document for e in await tx.events.list_events("audit")]
    assert event["eventName"] == "PolicyExecutionEvent"
    assert event["eventType"] == "AwsServiceEvent"
    assert (
        event["resources"][0]["ARN"] == f"arn:aws:ecr:us-east-1:123456789012:repository/{repo.name}"
    )
    details = event["serviceEventDetails"]
    assert details["repositoryName"] == repo.name
    (rule_record,) = details["lifecycleEventPolicy"]["lifecycleEventRules"]
    assert rule_record["lifecycleEventSelection"]["countType"] == "Image count more than"
    assert details["lifecycleEventImageActions"] == [
        {
            "lifecycleEventImage": {
                "digest": gone,
                "tagStatus": "Tagged",
                "tagList": ["build-1"],
                "pushedAt": int(pushed_at * 1000),
            },
            "rulePriority": 1,
            "action": "expire",
        }
    ]


async def test_index_children_stay_and_referrers_follow_their_subject(
    images: Images, lifecycle: LifecycleService, clock: Clock
) -> None:
    repo = await images.content.repository_for_push("lifecycle/graph")
    child = await images.push(repo, "child", [], at=START)
    loose = await images.push(repo, "loose", [], at=START + 1)
    async with images.store.read() as tx:
        (child_manifest,) = await tx.manifests.manifests_by_digest(repo.id, [child])
    index = index_manifest([Descriptor(OCI_MANIFEST, child, child_manifest.size)])
    await images.content.put_manifest(repo, "multi", index, OCI_INDEX)
    subject = Descriptor(OCI_MANIFEST, loose, (await images.content.manifest(repo, loose)).size)
    signature = await images.push(repo, "signature", [], at=START + 2, subject=subject)
    await lifecycle.put_policy(
        repo, policy(rule(1, tagStatus="untagged", **age("sinceImagePushed", 1)))
    )
    clock.now = START + 3 * DAY
    run = await lifecycle.run(repo)
    assert [a.manifest.digest for a in run.actions] == [loose, signature]


async def test_errors(images: Images, lifecycle: LifecycleService) -> None:
    repo = await images.content.repository_for_push("lifecycle/errors")
    with pytest.raises(LifecyclePolicyNotFound):
        await lifecycle.get_policy(repo)
    with pytest.raises(LifecyclePolicyNotFound):
        await lifecycle.delete_policy(repo)
    with pytest.raises(LifecyclePolicyNotFound):
        await lifecycle.start_preview(repo, None)
    with pytest.raises(LifecyclePolicyPreviewNotFound):
        await lifecycle.preview(repo)
    text = policy(rule(1, tagStatus="untagged", **count(1)))
    await lifecycle.start_preview(repo, text)
    with pytest.raises(LifecyclePolicyPreviewInProgress):
        await lifecycle.start_preview(repo, text)
    await lifecycle.compute_preview({"repository_id": repo.id})
    await lifecycle.start_preview(repo, text)  # a finished preview may be replaced


async def test_a_template_applies_its_lifecycle_policy(
    store: MetadataStore, lifecycle: LifecycleService, clock: Clock
) -> None:
    templates = TemplateService(store, clock)
    text = policy(rule(1, tagStatus="untagged", **count(3)))
    await templates.create_template(
        "123456789012", "team", {"appliedFor": ["CREATE_ON_PUSH"], "lifecyclePolicy": text}
    )
    created = await templates.create_from_template("123456789012", "team/app")
    assert created is not None
    assert (await lifecycle.get_policy(created)).text == text


async def test_a_run_never_expires_a_child_of_an_index_pushed_meanwhile(
    images: Images, lifecycle: LifecycleService, clock: Clock
) -> None:
    """An index pushed while a run plans does not lose its child: the run waits for the push
    that holds the child, then sees the index and leaves the child be (on SQLite the two
    transactions never overlap)."""
    repo = await images.content.repository_for_push("lifecycle/race")
    child = await images.push(repo, "child", [], at=START)
    async with images.store.read() as tx:
        (child_manifest,) = await tx.manifests.manifests_by_digest(repo.id, [child])
    await lifecycle.put_policy(
        repo, policy(rule(1, tagStatus="untagged", **age("sinceImagePushed", 1)))
    )
    clock.now = START + 3 * DAY
    index = index_manifest([Descriptor(OCI_MANIFEST, child, child_manifest.size)])
    hook = PausedPush()
    images.content.push_hook = hook  # type: ignore[assignment]
    pushing = asyncio.create_task(images.content.put_manifest(repo, "multi", index, OCI_INDEX))
    await hook.inside.wait()
    running = asyncio.create_task(lifecycle.run(repo))
    await asyncio.sleep(0.5)
    hook.release.set()
    await pushing
    run = await running
    assert child not in [a.manifest.digest for a in run.actions]
    async with images.store.read() as tx:
        assert await tx.manifests.manifests_by_digest(repo.id, [child])
