"""Background work and what it produces: scans, the vulnerability database, the job queue."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from cargohold.domain.scans import Job, Scan, ScanningConfiguration, StoredFinding


class Scans(Protocol):
    """Scans, their findings and the registry's scanning configuration."""

    async def scans_affected_since(self, since: float) -> list[int]:
        """Scans holding a package whose records were imported at or after `since`."""
        ...

    async def scanning_configuration(self, registry_id: str) -> ScanningConfiguration: ...

    async def put_scanning_configuration(
        self, registry_id: str, configuration: ScanningConfiguration, now: float
    ) -> None: ...

    async def scan_of(self, manifest_id: int) -> Scan | None: ...

    async def scan_by_id(self, scan_id: int) -> Scan | None: ...

    async def scans_of(self, manifest_ids: Iterable[int]) -> dict[int, Scan]: ...

    async def start_scan(self, manifest_id: int, now: float, description: str) -> int:
        """Mark the manifest's scan IN_PROGRESS (creating it), dropping earlier findings."""
        ...

    async def finish_scan(
        self,
        scan_id: int,
        *,
        status: str,
        description: str,
        now: float,
        vulndb_updated_at: float | None = None,
        inventory: Mapping[str, Any] | None = None,
        package_keys: Iterable[tuple[str, str]] = (),
        found: Sequence[Mapping[str, Any]] = (),
        severity_counts: Mapping[str, int] | None = None,
        keep_inventory: bool = False,
    ) -> None:
        """Record a scan's outcome; its findings (in order) replace any it had."""
        ...

    async def set_sbom(self, scan_id: int, digest: str) -> None: ...

    async def findings_page(
        self, scan_id: int, *, after: int, limit: int
    ) -> list[StoredFinding]: ...

    async def scan_targets(self, scan_ids: Iterable[int]) -> list[tuple[int, int, int]]:
        """(scan id, manifest id, repository id) of each scan."""
        ...


class Vulnerabilities(Protocol):
    """The vulnerability database imported from OSV."""

    async def vulnerability_versions(self, ids: Iterable[str]) -> dict[str, str]:
        """`modified` of the records among `ids` that are stored."""
        ...

    async def put_vulnerability(
        self,
        identifier: str,
        modified: str,
        document: Mapping[str, Any],
        packages: Iterable[tuple[str, str]],
        now: float,
    ) -> None:
        """Insert or replace one record and its package index."""
        ...

    async def records_for(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Any]]:
        """The records affecting each (ecosystem, name), by key."""
        ...

    async def vulndb_updated_at(self) -> float | None: ...


class Jobs(Protocol):
    """The job queue: leased background work."""

    async def enqueue(
        self, kind: str, payload: Mapping[str, Any], now: float, *, run_after: float | None = None
    ) -> int: ...

    async def ensure_job(self, kind: str, now: float) -> bool:
        """Queue a job of `kind` to run now unless one is queued or running already; whether
        one was queued. Never two at once, whatever the number of writers."""
        ...

    async def requeue_job(
        self, job_id: int, node: str, run_after: float, *, error: str | None = None
    ) -> bool:
        """Queue a job `node` ran once more, as new (no attempts), to run at `run_after`;
        false when `node` no longer holds it."""
        ...

    async def has_due_job(self, now: float) -> bool:
        """Whether `claim` would find a job: asked in a read transaction, so idle runners
        polling do not take SQLite's write lock."""
        ...

    async def claim(self, node: str, now: float, lease: float) -> Job | None:
        """The oldest job that is due, or whose runner's lease ran out, now leased to `node`."""
        ...

    async def extend_lease(self, job_id: int, node: str, until: float) -> bool: ...

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
        ...

    async def job_counts(self) -> dict[str, int]: ...

    async def delete_finished_jobs(self, before: float) -> int: ...


class Leases(Protocol):
    """Named leases: at most one holder of each name at a time, across processes and nodes.
    A holder that stops renewing loses its lease once it runs out."""

    async def acquire(self, name: str, holder: str, now: float, until: float) -> bool:
        """Take or renew `name` for `holder` until `until`: true when it was free, ran out
        before `now`, or is `holder`'s already; false while another holds it."""
        ...

    async def release(self, name: str, holder: str) -> bool:
        """Give `name` up if `holder` holds it; whether it did."""
        ...

    async def holder(self, name: str, now: float) -> str | None:
        """Who holds `name` now (None: nobody, or a lease that ran out)."""
        ...
