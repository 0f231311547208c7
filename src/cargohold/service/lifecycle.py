"""Lifecycle policies: Put/Get/DeleteLifecyclePolicy, previews (Start/GetLifecyclePolicyPreview)
and runs.

A run evaluates the repository's policy inside one write transaction (`lifecycle_plan.plan` over
the manifests as they are then), expires and archives what it says, records a
`PolicyExecutionEvent` in the audit log and stamps `lastEvaluatedAt`. A preview computes the same
plan in a job and keeps it; the status goes from IN_PROGRESS to COMPLETE. Runs are scheduled by
one periodic job that claims each repository whose policy is due by compare-and-set
(`Lifecycle.claim_due_runs`) and queues one run job for it: once per period per repository,
whatever the number of processes and nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.domain.ecrevents import service_event
from cargohold.domain.errors import (
    InvalidParameter,
    LifecyclePolicyNotFound,
    LifecyclePolicyPreviewInProgress,
    LifecyclePolicyPreviewNotFound,
)
from cargohold.domain.lifecycle_policy import parse_lifecycle_policy
from cargohold.domain.records import Repository, StoredLifecyclePolicy, StoredPreview
from cargohold.ports import Changes, Metadata, Transaction
from cargohold.service.audit import AUDIT, iso_time
from cargohold.service.image_ids import ImageId
from cargohold.service.images import DEFAULT_PAGE, decode_token, encode_token
from cargohold.service.jobs import JobKind, JobRunner
from cargohold.service.lifecycle_plan import ARCHIVED, PlannedAction, execution_event, plan

log = logging.getLogger(__name__)

#: Job kinds: the scheduler (periodic), one run of one repository, one preview.
SCHEDULE = "lifecycle-schedule"
RUN = "lifecycle-run"
PREVIEW = "lifecycle-preview"
#: Repositories claimed per statement by the scheduler.
CLAIM_BATCH = 100
#: The longest time between two looks for due policies, whatever the interval.
LONGEST_SCHEDULE = 3600.0


@dataclass(frozen=True, slots=True)
class PreviewPage:
    preview: StoredPreview
    results: list[dict[str, Any]]
    next_token: str | None
    #: Counts of every result; None until the preview is COMPLETE.
    summary: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunResult:
    repository: Repository
    actions: list[PlannedAction]


def _not_found(repository: Repository) -> LifecyclePolicyNotFound:
    return LifecyclePolicyNotFound(
        f"Lifecycle policy does not exist for the repository with name '{repository.name}' "
        f"in the registry with id '{repository.registry_id}'"
    )


def preview_not_found(repository: Repository) -> LifecyclePolicyPreviewNotFound:
    return LifecyclePolicyPreviewNotFound(
        f"Lifecycle policy preview does not exist for the repository with name "
        f"'{repository.name}' in the registry with id '{repository.registry_id}'"
    )


class LifecycleService:
    def __init__(
        self,
        store: Metadata,
        clock: Callable[[], float],
        *,
        region: str,
        interval: float = 86400.0,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._region = region
        self.interval = interval
        self._wake = wake

    @property
    def schedule_interval(self) -> float:
        """Seconds between two looks for due policies."""
        return min(self.interval, LONGEST_SCHEDULE)

    def register_jobs(self, jobs: JobRunner) -> None:
        """The scheduler (periodic), runs and previews run on `jobs`."""
        jobs.register(SCHEDULE, JobKind(self.schedule, every=self.schedule_interval))
        jobs.register(RUN, JobKind(self.run_job))
        jobs.register(PREVIEW, JobKind(self.compute_preview, self.fail_preview))

    # -- the policy ---------------------------------------------------------------------------

    async def put_policy(self, repository: Repository, text: str) -> str:
        parse_lifecycle_policy(text)
        now = self._clock()
        async with self._store.write() as tx:
            await tx.lifecycle.put_lifecycle_policy(repository.id, text, now, now + self.interval)
        return text

    async def get_policy(self, repository: Repository) -> StoredLifecyclePolicy:
        async with self._store.read() as tx:
            stored = await tx.lifecycle.lifecycle_policy(repository.id)
        if stored is None:
            raise _not_found(repository)
        return stored

    async def delete_policy(self, repository: Repository) -> StoredLifecyclePolicy:
        async with self._store.write() as tx:
            stored = await tx.lifecycle.lifecycle_policy(repository.id)
            if stored is None or not await tx.lifecycle.delete_lifecycle_policy(repository.id):
                raise _not_found(repository)
        return stored

    # -- previews -----------------------------------------------------------------------------

    async def start_preview(self, repository: Repository, text: str | None) -> str:
        """Start computing a preview of `text` (the repository's policy when None); the text."""
        if text is not None:
            parse_lifecycle_policy(text)
        async with self._store.write(changes=Changes.NOTHING) as tx:
            if text is None:
                stored = await tx.lifecycle.lifecycle_policy(repository.id)
                if stored is None:
                    raise _not_found(repository)
                text = stored.text
            if not await tx.lifecycle.start_preview(repository.id, text, self._clock()):
                raise LifecyclePolicyPreviewInProgress(
                    "Previous lifecycle policy preview request has not been completed for the "
                    f"repository with name '{repository.name}' in the registry with id "
                    f"'{repository.registry_id}'"
                )
            await tx.jobs.enqueue(PREVIEW, {"repository_id": repository.id}, self._clock())
        if self._wake is not None:
            self._wake()
        return text

    async def preview(self, repository: Repository) -> StoredPreview:
        async with self._store.read() as tx:
            stored = await tx.lifecycle.preview(repository.id)
        if stored is None:
            raise preview_not_found(repository)
        return stored

    async def preview_page(
        self,
        repository: Repository,
        *,
        image_ids: Sequence[ImageId] = (),
        tag_status: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> PreviewPage:
        """The preview, its results filtered (by image ids, by tag status) and one page of
        them; the summary counts every result."""
        stored = await self.preview(repository)
        results = list(stored.results or [])
        offset = 0
        if next_token is not None:
            key = decode_token(next_token, "GetLifecyclePolicyPreview", repository.id)
            if len(key) != 2 or not isinstance(key[0], int) or key[1] != stored.started_at:
                raise InvalidParameter(
                    "Invalid parameter at 'nextToken' failed to satisfy constraint: "
                    "'Invalid NextToken'"
                )
            offset = key[0]
        shown = [r for r in results if _wanted(r, image_ids, tag_status)]
        limit = max_results or DEFAULT_PAGE
        page = shown[offset : offset + limit]
        token = None
        if offset + limit < len(shown):
            token = encode_token(
                "GetLifecyclePolicyPreview", repository.id, [offset + limit, stored.started_at]
            )
        return PreviewPage(stored, page, token, _summary(results) if stored.results else None)

    async def compute_preview(self, payload: Mapping[str, Any]) -> None:
        """The preview job: the plan of the preview's text, kept as its results."""
        repository_id = int(payload["repository_id"])
        async with self._store.read() as tx:
            stored = await tx.lifecycle.preview(repository_id)
            if stored is None or stored.status != "IN_PROGRESS":
                return
            rules = parse_lifecycle_policy(stored.text)
            actions = plan(
                rules, await tx.lifecycle.lifecycle_manifests(repository_id), self._clock()
            )
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.lifecycle.finish_preview(
                repository_id, "COMPLETE", [each.preview_result() for each in actions]
            )

    async def fail_preview(self, payload: Mapping[str, Any], error: str) -> None:
        async with self._store.write(changes=Changes.NOTHING) as tx:
            await tx.lifecycle.finish_preview(int(payload["repository_id"]), "FAILED", None)

    # -- runs ---------------------------------------------------------------------------------

    async def run(self, repository: Repository) -> RunResult:
        """Apply the repository's policy now; what it expired and transitioned."""
        now = self._clock()
        async with self._store.write(changes=Changes.CONTENT) as tx:
            stored = await tx.lifecycle.lifecycle_policy(repository.id)
            if stored is None:
                raise _not_found(repository)
            rules = parse_lifecycle_policy(stored.text)
            actions = plan(rules, await tx.lifecycle.lifecycle_manifests(repository.id), now)
            # An index pushed while this planned may list one of them now: it stays.
            listed = await tx.lifecycle.hold_for_actions(
                repository.id, [a.manifest.id for a in actions]
            )
            actions = [a for a in actions if a.manifest.id not in listed]
            await self._apply(tx, actions, now)
            await tx.lifecycle.set_evaluated(repository.id, now)
            if actions:
                event = execution_event(
                    repository,
                    self._region,
                    rules,
                    actions,
                    now=now,
                    iso_time=iso_time(now),
                    policy_updated_at=stored.updated_at,
                )
                await tx.events.insert_events([_event_row(event, repository, now)])
                # ECR reports lifecycle actions only as this CloudTrail record, which
                # EventBridge delivers as an "AWS Service Event via CloudTrail".
                delivered = service_event(
                    event,
                    account=repository.registry_id,
                    region=self._region,
                    repository=repository.name,
                    now=now,
                )
                await tx.outbox.append_events([delivered])
        return RunResult(repository, actions)

    @staticmethod
    async def _apply(tx: Transaction, actions: list[PlannedAction], now: float) -> None:
        archived = [a.manifest.id for a in actions if a.action == "transition"]
        if archived:
            await tx.lifecycle.set_image_status(archived, ARCHIVED, archived_at=now)
        for action in actions:
            if action.action == "expire":
                await tx.manifests.delete_manifest(action.manifest.id)

    async def run_job(self, payload: Mapping[str, Any]) -> None:
        """The run job of one repository (queued by the scheduler)."""
        repository_id = int(payload["repository_id"])
        async with self._store.read() as tx:
            found = await tx.repositories.repositories_by_id([repository_id])
        repository = found.get(repository_id)
        if repository is None:
            return
        try:
            result = await self.run(repository)
        except LifecyclePolicyNotFound:
            return
        if result.actions:
            log.info(
                "lifecycle policy of %s: %d images expired or archived",
                repository.name,
                len(result.actions),
            )

    async def schedule(self, payload: Mapping[str, Any] | None = None) -> None:
        """The periodic job: queue one run for each repository whose policy is due."""
        while True:
            now = self._clock()
            async with self._store.write(changes=Changes.NOTHING) as tx:
                claimed = await tx.lifecycle.claim_due_runs(now, now + self.interval, CLAIM_BATCH)
                for repository_id in claimed:
                    await tx.jobs.enqueue(RUN, {"repository_id": repository_id}, now)
            if claimed and self._wake is not None:
                self._wake()
            if len(claimed) < CLAIM_BATCH:
                return

    async def repositories_with_policies(self) -> list[Repository]:
        async with self._store.read() as tx:
            ids = await tx.lifecycle.policy_repositories()
            found = await tx.repositories.repositories_by_id(ids)
        return [found[i] for i in ids if i in found]


def _wanted(
    result: Mapping[str, Any], image_ids: Sequence[ImageId], tag_status: str | None
) -> bool:
    tags = result.get("imageTags") or []
    if tag_status == "TAGGED" and not tags:
        return False
    if tag_status == "UNTAGGED" and tags:
        return False
    if not image_ids:
        return True
    return any(
        (i.digest is None or i.digest == result["imageDigest"]) and (i.tag is None or i.tag in tags)
        for i in image_ids
    )


def _summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    kinds = [r["action"]["type"] for r in results]
    summary: dict[str, Any] = {"expiringImageTotalCount": kinds.count("EXPIRE")}
    transitioning = kinds.count("TRANSITION")
    if transitioning:
        summary["transitioningImageTotalCounts"] = [
            {"targetStorageClass": "ARCHIVE", "imageTotalCount": transitioning}
        ]
    return summary


def _event_row(event: dict[str, Any], repository: Repository, now: float) -> dict[str, Any]:
    return {
        "kind": AUDIT,
        "event_time": now,
        "account_id": repository.registry_id,
        "event_source": event["eventSource"],
        "event_name": event["eventName"],
        "principal_arn": None,
        "error_code": None,
        "document": event,
    }
