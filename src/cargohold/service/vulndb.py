"""The vulnerability database: importing OSV records (incrementally) and looking them up.

An import stores a record only when it is new or its `modified` changed; each one stored is
indexed by the (ecosystem, package) pairs it affects. When anything changed, one `rematch` job
is queued: images under CONTINUOUS_SCAN that hold an affected package are matched again from
their stored inventories.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cargohold.domain.vulnerabilities import normalize_ecosystem, normalize_name
from cargohold.ports import Metadata

REMATCH = "rematch"
_BATCH = 200


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    #: Records without an id or `modified`, or affecting no package.
    invalid: int = 0
    #: The time stamped on what this import stored; None when it stored nothing.
    imported_at: float | None = None

    @property
    def changed(self) -> int:
        return self.added + self.updated


def record_packages(record: Mapping[str, Any]) -> set[tuple[str, str]]:
    packages = set()
    for entry in record.get("affected") or []:
        package = entry.get("package") or {}
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if isinstance(ecosystem, str) and isinstance(name, str) and ecosystem and name:
            ecosystem = normalize_ecosystem(ecosystem)
            packages.add((ecosystem, normalize_name(ecosystem, name)))
    return packages


class VulnerabilityDatabase:
    def __init__(self, store: Metadata, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def import_records(
        self,
        records: Iterable[Mapping[str, Any]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        report = ImportReport()
        now = self._clock()
        batch: list[Mapping[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) >= _BATCH:
                await self._import_batch(batch, now, report)
                if progress is not None:
                    progress(len(batch))
                batch = []
        if batch:
            await self._import_batch(batch, now, report)
            if progress is not None:
                progress(len(batch))
        if report.changed:
            report.imported_at = now
            async with self._store.write() as tx:
                await tx.jobs.enqueue(REMATCH, {"since": now}, self._clock())
        return report

    async def _import_batch(
        self, batch: list[Mapping[str, Any]], now: float, report: ImportReport
    ) -> None:
        valid = []
        for record in batch:
            identifier, modified = record.get("id"), record.get("modified")
            if not isinstance(identifier, str) or not isinstance(modified, str):
                report.invalid += 1
                continue
            valid.append((identifier, modified, record))
        async with self._store.write() as tx:
            stored = await tx.vulnerabilities.vulnerability_versions(i for i, _, _ in valid)
            for identifier, modified, record in valid:
                if stored.get(identifier) == modified:
                    report.unchanged += 1
                    continue
                await tx.vulnerabilities.put_vulnerability(
                    identifier, modified, record, record_packages(record), now
                )
                if identifier in stored:
                    report.updated += 1
                else:
                    report.added += 1
                stored[identifier] = modified

    async def lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Any]]:
        async with self._store.read() as tx:
            return await tx.vulnerabilities.records_for(keys)

    async def updated_at(self) -> float | None:
        async with self._store.read() as tx:
            return await tx.vulnerabilities.vulndb_updated_at()
