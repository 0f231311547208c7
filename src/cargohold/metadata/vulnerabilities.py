"""The vulnerability database imported from OSV."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from cargohold.metadata.schema import (
    vulnerabilities,
    vulnerability_packages,
)
from cargohold.metadata.sql import BATCH_ROWS, SqlStore


class SqlVulnerabilities(SqlStore):
    """The vulnerability database imported from OSV."""

    async def vulnerability_versions(self, ids: Iterable[str]) -> dict[str, str]:
        """`modified` of the records among `ids` that are stored."""
        wanted = sorted(set(ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), BATCH_ROWS):
            rows = await self.conn.execute(
                sa.select(vulnerabilities.c.id, vulnerabilities.c.modified).where(
                    vulnerabilities.c.id.in_(wanted[start : start + BATCH_ROWS])
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
        for start in range(0, len(wanted), BATCH_ROWS):
            batch = wanted[start : start + BATCH_ROWS]
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
