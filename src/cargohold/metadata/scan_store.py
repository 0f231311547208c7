"""Queries over the vulnerability database, scans, findings, the scanning configuration and
background jobs, inside a transaction the `MetadataStore` opened: `ScanTx(tx.conn)`.

Jobs are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so nodes never claim the same
job and never wait on each other; SQLite's single writer (write transactions begin IMMEDIATE)
gives the same guarantee.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from cargohold.domain.scans import Job, Scan, ScanningConfiguration, StoredFinding
from cargohold.metadata.schema import (
    findings,
    jobs,
    manifests,
    scan_packages,
    scanning_configurations,
    scans,
    vulnerabilities,
    vulnerability_packages,
)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
GAVE_UP = "failed"

#: Rows per INSERT when many are written at once.
_BATCH = 500


def _scan(row: Any) -> Scan:
    return Scan(
        id=row.id,
        manifest_id=row.manifest_id,
        status=row.status,
        description=row.description or "",
        requested_at=float(row.requested_at),
        completed_at=float(row.completed_at) if row.completed_at is not None else None,
        vulndb_updated_at=(
            float(row.vulndb_updated_at) if row.vulndb_updated_at is not None else None
        ),
        severity_counts=dict(row.severity_counts or {}),
        inventory=row.inventory,
        sbom_digest=row.sbom_digest,
    )


class ScanTx:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    def _insert(self, table: sa.Table) -> Any:
        return (postgresql if self._postgres else sqlite).insert(table)

    async def _insert_many(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(rows), _BATCH):
            await self.conn.execute(sa.insert(table), list(rows[start : start + _BATCH]))

    # -- the vulnerability database ---------------------------------------------------------

    async def vulnerability_versions(self, ids: Iterable[str]) -> dict[str, str]:
        """`modified` of the records among `ids` that are stored."""
        wanted = sorted(set(ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), _BATCH):
            rows = await self.conn.execute(
                sa.select(vulnerabilities.c.id, vulnerabilities.c.modified).where(
                    vulnerabilities.c.id.in_(wanted[start : start + _BATCH])
                )
            )
            found.update({row.id: row.modified for row in rows})
        return found

    async def put_vulnerability(
        self,
        identifier: str,
        modified: str,
        document: Mapping[str, Any],
        packages: Iterable[tuple[str, str]],
        now: float,
    ) -> None:
        """Insert or replace one record and its package index."""
        stmt = self._insert(vulnerabilities).values(
            id=identifier, modified=modified, document=dict(document), imported_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "modified": stmt.excluded.modified,
                "document": stmt.excluded.document,
                "imported_at": stmt.excluded.imported_at,
            },
        )
        await self.conn.execute(stmt)
        await self.conn.execute(
            sa.delete(vulnerability_packages).where(
                vulnerability_packages.c.vulnerability_id == identifier
            )
        )
        rows = [
            {"vulnerability_id": identifier, "ecosystem": e, "name": n}
            for e, n in sorted(set(packages))
        ]
        if rows:
            await self._insert_many(vulnerability_packages, rows)

    async def records_for(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Any]]:
        """The records affecting each (ecosystem, name), by key."""
        wanted = sorted(set(keys))
        found: dict[tuple[str, str], list[Any]] = {}
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            rows = await self.conn.execute(
                sa.select(
                    vulnerability_packages.c.ecosystem,
                    vulnerability_packages.c.name,
                    vulnerabilities.c.document,
                )
                .select_from(
                    vulnerability_packages.join(
                        vulnerabilities,
                        vulnerabilities.c.id == vulnerability_packages.c.vulnerability_id,
                    )
                )
                .where(
                    sa.tuple_(
                        vulnerability_packages.c.ecosystem, vulnerability_packages.c.name
                    ).in_(batch)
                )
                .order_by(vulnerabilities.c.id)
            )
            for row in rows:
                found.setdefault((row.ecosystem, row.name), []).append(row.document)
        return found

    async def vulndb_updated_at(self) -> float | None:
        value = (
            await self.conn.execute(sa.select(sa.func.max(vulnerabilities.c.imported_at)))
        ).scalar()
        return float(value) if value is not None else None

    async def count_vulnerabilities(self) -> int:
        value = (
            await self.conn.execute(sa.select(sa.func.count()).select_from(vulnerabilities))
        ).scalar_one()
        return int(value)

    async def scans_affected_since(self, since: float) -> list[int]:
        """Scans holding a package whose records were imported at or after `since`."""
        changed = (
            sa.select(vulnerability_packages.c.ecosystem, vulnerability_packages.c.name)
            .select_from(
                vulnerability_packages.join(
                    vulnerabilities,
                    vulnerabilities.c.id == vulnerability_packages.c.vulnerability_id,
                )
            )
            .where(vulnerabilities.c.imported_at >= since)
            .subquery()
        )
        rows = await self.conn.execute(
            sa.select(scan_packages.c.scan_id)
            .select_from(
                scan_packages.join(
                    changed,
                    sa.and_(
                        changed.c.ecosystem == scan_packages.c.ecosystem,
                        changed.c.name == scan_packages.c.name,
                    ),
                )
            )
            .distinct()
            .order_by(scan_packages.c.scan_id)
        )
        return [int(row.scan_id) for row in rows]

    # -- the registry's scanning configuration ------------------------------------------------

    async def scanning_configuration(self, registry_id: str) -> ScanningConfiguration:
        row = (
            await self.conn.execute(
                sa.select(scanning_configurations).where(
                    scanning_configurations.c.registry_id == registry_id
                )
            )
        ).first()
        if row is None:
            return ScanningConfiguration()
        return ScanningConfiguration.from_json(row.scan_type, row.rules)

    async def put_scanning_configuration(
        self, registry_id: str, configuration: ScanningConfiguration, now: float
    ) -> None:
        document = configuration.to_json()
        stmt = self._insert(scanning_configurations).values(
            registry_id=registry_id,
            scan_type=configuration.scan_type,
            rules=document["rules"],
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["registry_id"],
            set_={
                "scan_type": stmt.excluded.scan_type,
                "rules": stmt.excluded.rules,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        await self.conn.execute(stmt)

    # -- scans ----------------------------------------------------------------------------------

    async def scan_of(self, manifest_id: int) -> Scan | None:
        row = (
            await self.conn.execute(sa.select(scans).where(scans.c.manifest_id == manifest_id))
        ).first()
        return _scan(row) if row else None

    async def scan_by_id(self, scan_id: int) -> Scan | None:
        row = (await self.conn.execute(sa.select(scans).where(scans.c.id == scan_id))).first()
        return _scan(row) if row else None

    async def scans_of(self, manifest_ids: Iterable[int]) -> dict[int, Scan]:
        wanted = sorted(set(manifest_ids))
        if not wanted:
            return {}
        rows = await self.conn.execute(
            sa.select(
                *[c for c in scans.c if c.name != "inventory"], sa.null().label("inventory")
            ).where(scans.c.manifest_id.in_(wanted))
        )
        return {row.manifest_id: _scan(row) for row in rows}

    async def start_scan(self, manifest_id: int, now: float, description: str) -> int:
        """Mark the manifest's scan IN_PROGRESS (creating it), dropping earlier findings."""
        existing = await self.scan_of(manifest_id)
        values = {
            "status": "IN_PROGRESS",
            "description": description,
            "requested_at": now,
            "completed_at": None,
            "severity_counts": {},
        }
        if existing is None:
            result = await self.conn.execute(
                sa.insert(scans).values(manifest_id=manifest_id, **values).returning(scans.c.id)
            )
            return int(result.scalar_one())
        await self.conn.execute(sa.update(scans).where(scans.c.id == existing.id).values(**values))
        await self.conn.execute(sa.delete(findings).where(findings.c.scan_id == existing.id))
        return existing.id

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
        values: dict[str, Any] = {
            "status": status,
            "description": description,
            "completed_at": now,
            "vulndb_updated_at": vulndb_updated_at,
            "severity_counts": dict(severity_counts or {}),
        }
        if not keep_inventory:
            values["inventory"] = dict(inventory) if inventory is not None else None
        await self.conn.execute(sa.update(scans).where(scans.c.id == scan_id).values(**values))
        await self.conn.execute(sa.delete(findings).where(findings.c.scan_id == scan_id))
        if found:
            await self._insert_many(
                findings, [{"scan_id": scan_id, "ordinal": i, **f} for i, f in enumerate(found)]
            )
        if not keep_inventory:
            await self.conn.execute(
                sa.delete(scan_packages).where(scan_packages.c.scan_id == scan_id)
            )
            rows = [
                {"scan_id": scan_id, "ecosystem": e, "name": n}
                for e, n in sorted(set(package_keys))
            ]
            if rows:
                await self._insert_many(scan_packages, rows)

    async def set_sbom(self, scan_id: int, digest: str) -> None:
        await self.conn.execute(
            sa.update(scans).where(scans.c.id == scan_id).values(sbom_digest=digest)
        )

    async def findings_page(self, scan_id: int, *, after: int, limit: int) -> list[StoredFinding]:
        rows = await self.conn.execute(
            sa.select(findings)
            .where(findings.c.scan_id == scan_id, findings.c.ordinal > after)
            .order_by(findings.c.ordinal)
            .limit(limit)
        )
        return [
            StoredFinding(
                row.ordinal,
                row.name,
                row.severity,
                row.uri,
                row.description,
                list(row.attributes or []),
            )
            for row in rows
        ]

    async def scan_targets(self, scan_ids: Iterable[int]) -> list[tuple[int, int, int]]:
        """(scan id, manifest id, repository id) of each scan."""
        wanted = sorted(set(scan_ids))
        if not wanted:
            return []
        rows = await self.conn.execute(
            sa.select(scans.c.id, scans.c.manifest_id, manifests.c.repository_id)
            .select_from(scans.join(manifests, manifests.c.id == scans.c.manifest_id))
            .where(scans.c.id.in_(wanted))
            .order_by(scans.c.id)
        )
        return [(int(r.id), int(r.manifest_id), int(r.repository_id)) for r in rows]

    # -- jobs -----------------------------------------------------------------------------------

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

    async def expired_jobs(self, now: float) -> list[Job]:
        rows = await self.conn.execute(
            sa.select(jobs).where(jobs.c.status == RUNNING, jobs.c.lease_until < now)
        )
        return [Job(r.id, r.kind, dict(r.payload or {}), r.attempts) for r in rows]

    async def delete_finished_jobs(self, before: float) -> int:
        result = await self.conn.execute(
            sa.delete(jobs).where(jobs.c.status.in_([DONE, GAVE_UP]), jobs.c.finished_at < before)
        )
        return int(result.rowcount or 0)
