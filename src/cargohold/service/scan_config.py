"""The scanning configuration: the registry's (scan type and rules by repository filter) and each
repository's scan on push; and what they decide, a repository's scan frequency: whether a push
is scanned, and which images CONTINUOUS_SCAN matches again when the vulnerability database
changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.domain.records import Repository
from cargohold.domain.scans import (
    CONTINUOUS_SCAN,
    SCAN_ON_PUSH,
    ScanningConfiguration,
    ScanRule,
)
from cargohold.ports import Metadata, Transaction


@dataclass(frozen=True, slots=True)
class RepositoryScanning:
    """BatchGetRepositoryScanningConfiguration's answer for one repository."""

    repository: Repository
    scan_on_push: bool
    frequency: str
    rule: ScanRule | None


def scanned_on_push(frequency: str) -> bool:
    return frequency in (SCAN_ON_PUSH, CONTINUOUS_SCAN)


async def scans_on_push(tx: Transaction, repository: Repository) -> bool:
    """Whether a push to `repository` is scanned (SCAN_ON_PUSH or CONTINUOUS_SCAN)."""
    configuration = await tx.scans.scanning_configuration(repository.registry_id)
    return scanned_on_push(configuration.frequency(repository.name, repository.scan_on_push))


async def continuous_scans(tx: Transaction, since: float) -> list[int]:
    """The scans, of images under CONTINUOUS_SCAN, that hold a package whose advisories changed
    at or after `since`."""
    affected = await tx.scans.scans_affected_since(since)
    targets = await tx.scans.scan_targets(affected)
    names = {
        r.id: (r.registry_id, r.name, r.scan_on_push)
        for r in (await tx.repositories.repositories_by_id(t[2] for t in targets)).values()
    }
    configurations = {
        registry: await tx.scans.scanning_configuration(registry)
        for registry in {n[0] for n in names.values()}
    }
    continuous = []
    for scan_id, _manifest_id, repository_id in targets:
        registry_id, name, scan_on_push = names[repository_id]
        if configurations[registry_id].frequency(name, scan_on_push) == CONTINUOUS_SCAN:
            continuous.append(scan_id)
    return continuous


class ScanConfigService:
    """GetRegistryScanningConfiguration, PutRegistryScanningConfiguration,
    PutImageScanningConfiguration and BatchGetRepositoryScanningConfiguration."""

    def __init__(self, store: Metadata, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    async def registry_configuration(self, registry_id: str) -> ScanningConfiguration:
        async with self._store.read() as tx:
            return await tx.scans.scanning_configuration(registry_id)

    async def put_registry_configuration(
        self, registry_id: str, scan_type: str | None, rules: Sequence[Any] | None
    ) -> ScanningConfiguration:
        configuration = ScanningConfiguration.checked(scan_type, rules)
        async with self._store.write() as tx:
            await tx.scans.put_scanning_configuration(registry_id, configuration, self._clock())
        return configuration

    async def put_repository_scanning(self, repository: Repository, scan_on_push: bool) -> None:
        async with self._store.write() as tx:
            await tx.repositories.update_repository(repository.id, scan_on_push=scan_on_push)

    async def repository_scanning(
        self, registry_id: str, names: Sequence[str]
    ) -> tuple[list[RepositoryScanning], list[str]]:
        """Each named repository's effective configuration; names that do not exist."""
        found, missing = [], []
        async with self._store.read() as tx:
            configuration = await tx.scans.scanning_configuration(registry_id)
            for name in dict.fromkeys(names):
                repository = await tx.repositories.get_repository(registry_id, name)
                if repository is None:
                    missing.append(name)
                    continue
                frequency = configuration.frequency(name, repository.scan_on_push)
                found.append(
                    RepositoryScanning(
                        repository,
                        scanned_on_push(frequency),
                        frequency,
                        configuration.rule_for(name),
                    )
                )
        return found, missing


__all__ = [
    "RepositoryScanning",
    "ScanConfigService",
    "continuous_scans",
    "scanned_on_push",
    "scans_on_push",
]
