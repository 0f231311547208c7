"""Lifecycle policies, their previews and runs, the archive storage class and pull times."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from cargohold.domain.records import LifecycleManifest, StoredLifecyclePolicy, StoredPreview


class Lifecycle(Protocol):
    """Lifecycle policies and previews; what a run reads and changes; pull-time exclusions."""

    async def lifecycle_policy(self, repository_id: int) -> StoredLifecyclePolicy | None: ...

    async def put_lifecycle_policy(
        self, repository_id: int, text: str, now: float, next_run_at: float
    ) -> None: ...

    async def delete_lifecycle_policy(self, repository_id: int) -> bool: ...

    async def claim_due_runs(self, now: float, next_run_at: float, limit: int) -> list[int]:
        """Repositories whose policy is due at `now`, each moved on to `next_run_at` by
        compare-and-set: a repository is claimed by one caller only, whatever their number."""
        ...

    async def policy_repositories(self) -> list[int]:
        """Every repository that has a lifecycle policy."""
        ...

    async def set_evaluated(self, repository_id: int, now: float) -> None: ...

    async def preview(self, repository_id: int) -> StoredPreview | None: ...

    async def start_preview(self, repository_id: int, text: str, now: float) -> bool:
        """Record a preview IN_PROGRESS unless one is; whether it was recorded."""
        ...

    async def finish_preview(
        self, repository_id: int, status: str, results: Sequence[Mapping[str, Any]] | None
    ) -> None: ...

    async def lifecycle_manifests(self, repository_id: int) -> list[LifecycleManifest]:
        """Every manifest of the repository, oldest push first, with its tags."""
        ...

    async def set_image_status(
        self,
        manifest_ids: Iterable[int],
        status: str,
        *,
        archived_at: float | None = None,
        activated_at: float | None = None,
    ) -> None:
        """Move manifests to a status, stamping the time given (the other stays)."""
        ...

    async def record_pulls(self, pulls: Mapping[int, float]) -> None:
        """Move each manifest's `last_pulled_at` forward to the time given (never back)."""
        ...

    async def pull_exclusions(self, registry_id: str) -> dict[str, float]:
        """Principal ARN -> when it was registered."""
        ...

    async def add_pull_exclusion(
        self, registry_id: str, principal_arn: str, now: float
    ) -> bool: ...

    async def delete_pull_exclusion(self, registry_id: str, principal_arn: str) -> bool: ...
