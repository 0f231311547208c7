"""ECR's scanning operations on the wire: PutImageScanningConfiguration, Get/Put
RegistryScanningConfiguration, BatchGetRepositoryScanningConfiguration, StartImageScan and
DescribeImageScanFindings; `scan_fields` adds imageScanStatus and imageScanFindingsSummary to
DescribeImages' details."""

from __future__ import annotations

from typing import Any

from cargohold.domain.principal import repository_arn
from cargohold.domain.records import Repository
from cargohold.http.ecr import EcrCall, Handler
from cargohold.service.content import ContentService
from cargohold.service.images import ImageId
from cargohold.service.scans import ScanService, ScanState


def scan_status(state: ScanState) -> dict[str, str]:
    return {"status": state.status, "description": state.description}


def scan_fields(state: ScanState | None) -> dict[str, Any]:
    """The members DescribeImages shows for an image's scan (none when never scanned)."""
    if state is None:
        return {}
    shaped: dict[str, Any] = {"imageScanStatus": scan_status(state)}
    if state.completed_at is not None:
        summary: dict[str, Any] = {
            "imageScanCompletedAt": state.completed_at,
            "findingSeverityCounts": dict(state.severity_counts),
        }
        if state.vulndb_updated_at is not None:
            summary["vulnerabilitySourceUpdatedAt"] = state.vulndb_updated_at
        shaped["imageScanFindingsSummary"] = summary
    return shaped


def _image_id(call: EcrCall) -> ImageId:
    given = call.params.get("imageId", {})
    return ImageId(given.get("imageDigest"), given.get("imageTag"))


class _ScanHandlers:
    def __init__(self, scans: ScanService, content: ContentService) -> None:
        self._scans = scans
        self._content = content

    async def _repository(self, call: EcrCall) -> Repository:
        return await self._content.repository(call.params["repositoryName"], call.registry_id)

    async def put_image_scanning_configuration(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        scan_on_push = bool(call.params["imageScanningConfiguration"].get("scanOnPush", False))
        await self._scans.put_repository_scanning(repository, scan_on_push)
        return {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "imageScanningConfiguration": {"scanOnPush": scan_on_push},
        }

    async def get_registry_scanning_configuration(self, call: EcrCall) -> dict[str, Any]:
        configuration = await self._scans.registry_configuration(call.registry_id)
        return {"registryId": call.registry_id, "scanningConfiguration": configuration.to_json()}

    async def put_registry_scanning_configuration(self, call: EcrCall) -> dict[str, Any]:
        configuration = await self._scans.put_registry_configuration(
            call.registry_id, call.params.get("scanType"), call.params.get("rules")
        )
        return {"registryScanningConfiguration": configuration.to_json()}

    async def batch_get_repository_scanning_configuration(self, call: EcrCall) -> dict[str, Any]:
        found, missing = await self._scans.repository_scanning(
            call.registry_id, call.params["repositoryNames"]
        )
        configurations = []
        for item in found:
            shaped: dict[str, Any] = {
                "repositoryArn": repository_arn(
                    call.region, item.repository.registry_id, item.repository.name
                ),
                "repositoryName": item.repository.name,
                "scanOnPush": item.scan_on_push,
                "scanFrequency": item.frequency,
            }
            if item.rule is not None:
                shaped["appliedScanFilters"] = item.rule.to_json()["repositoryFilters"]
            configurations.append(shaped)
        failures = [
            {
                "repositoryName": name,
                "failureCode": "REPOSITORY_NOT_FOUND",
                "failureReason": "REPOSITORY_NOT_FOUND",
            }
            for name in missing
        ]
        return {"scanningConfigurations": configurations, "failures": failures}

    async def start_image_scan(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        requested = _image_id(call)
        manifest, state = await self._scans.start_image_scan(repository, requested)
        image_id = {"imageDigest": manifest.digest}
        if requested.tag:
            image_id["imageTag"] = requested.tag
        return {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "imageId": image_id,
            "imageScanStatus": scan_status(state),
        }

    async def describe_image_scan_findings(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        requested = _image_id(call)
        page = await self._scans.describe_findings(
            repository,
            requested,
            max_results=call.params.get("maxResults"),
            next_token=call.params.get("nextToken"),
        )
        image_id = {"imageDigest": page.manifest.digest}
        if requested.tag:
            image_id["imageTag"] = requested.tag
        answer: dict[str, Any] = {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "imageId": image_id,
            "imageScanStatus": scan_status(page.state),
        }
        if page.state.completed_at is not None:
            findings: dict[str, Any] = {
                "imageScanCompletedAt": page.state.completed_at,
                "findingSeverityCounts": dict(page.state.severity_counts),
                "findings": [
                    {
                        "name": f.name,
                        "description": f.description,
                        "uri": f.uri,
                        "severity": f.severity,
                        "attributes": f.attributes,
                    }
                    for f in page.findings
                ],
            }
            if page.state.vulndb_updated_at is not None:
                findings["vulnerabilitySourceUpdatedAt"] = page.state.vulndb_updated_at
            answer["imageScanFindings"] = findings
        if page.next_token is not None:
            answer["nextToken"] = page.next_token
        return answer


def scanning_handlers(scans: ScanService, content: ContentService) -> dict[str, Handler]:
    h = _ScanHandlers(scans, content)
    return {
        "PutImageScanningConfiguration": h.put_image_scanning_configuration,
        "GetRegistryScanningConfiguration": h.get_registry_scanning_configuration,
        "PutRegistryScanningConfiguration": h.put_registry_scanning_configuration,
        "BatchGetRepositoryScanningConfiguration": h.batch_get_repository_scanning_configuration,
        "StartImageScan": h.start_image_scan,
        "DescribeImageScanFindings": h.describe_image_scan_findings,
    }
