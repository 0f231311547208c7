"""Image scanning, by concern:

- `scan_config`: the registry's and each repository's scanning configuration, and the scan
  frequency they decide;
- `scan_runner`: queueing scans (on push and on StartImageScan) and the `scan` and `rematch`
  jobs that carry them out;
- `findings`: the scan state of each image (for DescribeImages) and the pages of
  DescribeImageScanFindings;
- `sbom`: the CycloneDX SBOM, attached as a referrer after a scan and exported on demand.

`ScanService` holds the four together and answers the ECR API's scanning operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.domain.records import Manifest, Repository
from cargohold.domain.scans import ScanningConfiguration
from cargohold.service.findings import FindingsPage, FindingsService, ScanState
from cargohold.service.images import ImageId
from cargohold.service.sbom import SbomService
from cargohold.service.scan_config import RepositoryScanning, ScanConfigService
from cargohold.service.scan_runner import ScanRunner


@dataclass(frozen=True, slots=True)
class ScanService:
    """The scanning parts of a node, and the operations the ECR API's scanning calls answer."""

    configuration: ScanConfigService
    runner: ScanRunner
    findings: FindingsService
    sbom: SbomService

    async def registry_configuration(self, registry_id: str) -> ScanningConfiguration:
        return await self.configuration.registry_configuration(registry_id)

    async def put_registry_configuration(
        self, registry_id: str, scan_type: str | None, rules: Sequence[Any] | None
    ) -> ScanningConfiguration:
        return await self.configuration.put_registry_configuration(registry_id, scan_type, rules)

    async def put_repository_scanning(self, repository: Repository, scan_on_push: bool) -> None:
        await self.configuration.put_repository_scanning(repository, scan_on_push)

    async def repository_scanning(
        self, registry_id: str, names: Sequence[str]
    ) -> tuple[list[RepositoryScanning], list[str]]:
        return await self.configuration.repository_scanning(registry_id, names)

    async def start_image_scan(
        self, repository: Repository, image_id: ImageId
    ) -> tuple[Manifest, ScanState]:
        return await self.runner.start_image_scan(repository, image_id)

    async def describe_findings(
        self,
        repository: Repository,
        image_id: ImageId,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> FindingsPage:
        return await self.findings.describe_findings(
            repository, image_id, max_results=max_results, next_token=next_token
        )


__all__ = ["ScanService", "ScanState"]
