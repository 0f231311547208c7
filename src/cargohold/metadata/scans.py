"""Scans, their findings and the registry's scanning configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cargohold.domain.scans import Scan, ScanningConfiguration, StoredFinding
from cargohold.metadata.schema import (
    findings,
    manifests,
    scan_packages,
    scanning_configurations,
    scans,
    vulnerabilities,
    vulnerability_packages,
)
from cargohold.metadata.sql import SqlStore


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


class SqlScans(SqlStore):
    """Scans, their findings and the registry's scanning configuration."""

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
