"""Image scanning through boto3 against a live server: scan on push and the
`image_scan_complete` waiter, StartImageScan's daily quota, DescribeImageScanFindings with its
paginator and errors, DescribeImages' scan members, the registry's and repositories' scanning
configuration, and the SBOM referrer seen through ListImageReferrers, `/v2/` and the CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_ecr import ECRClient

from support.images import OCI_CONFIG, OCI_MANIFEST, image_config
from support.scan_images import IMAGES, OSV_FIXTURES, ScanImage
from support.server import RegistryServer
from support.waiting import wait_until

SBOM = "application/vnd.cyclonedx+json"
_names = itertools.count()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def cargohold(server: RegistryServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args, "--data-dir", str(server.data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module", autouse=True)
def vulndb(ecr_server: RegistryServer) -> None:
    out = cargohold(ecr_server, "vulndb", "import", str(OSV_FIXTURES)).stdout
    assert "imported 12 new" in out


def new_repo(ecr: ECRClient, *, scan_on_push: bool = False) -> str:
    name = f"scan/test-{next(_names)}"
    ecr.create_repository(
        repositoryName=name, imageScanningConfiguration={"scanOnPush": scan_on_push}
    )
    return name


def upload(ecr: ECRClient, repo: str, data: bytes) -> str:
    upload_id = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=repo,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=len(data) - 1,
        layerPartBlob=data,
    )
    ecr.complete_layer_upload(repositoryName=repo, uploadId=upload_id, layerDigests=[sha(data)])
    return sha(data)


def push(ecr: ECRClient, repo: str, image: ScanImage, tag: str) -> str:
    layers = image.layer_descriptors()
    for blob, _ in image.layers:
        upload(ecr, repo, blob)
    config = image_config(layers)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": upload(ecr, repo, config),
            "size": len(config),
        },
        "layers": [layer.descriptor.to_json() for layer in layers],
    }
    answer = ecr.put_image(repositoryName=repo, imageManifest=json.dumps(document), imageTag=tag)
    return answer["image"]["imageId"]["imageDigest"]


def wait(ecr: ECRClient, repo: str, tag: str) -> None:
    ecr.get_waiter("image_scan_complete").wait(
        repositoryName=repo, imageId={"imageTag": tag}, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


def findings(ecr: ECRClient, repo: str, tag: str) -> list[dict[str, Any]]:
    pages = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName=repo, imageId={"imageTag": tag}, PaginationConfig={"PageSize": 2}
    )
    found = []
    for page in pages:
        for finding in page["imageScanFindings"]["findings"]:
            attributes = {a["key"]: a.get("value", "") for a in finding.get("attributes", [])}
            found.append({**finding, **attributes})
    return found


def as_expected(found: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    return {(f["name"], f["package_name"], f["package_version"], f["severity"]) for f in found}


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_scan_on_push_with_the_waiter(ecr: ECRClient) -> None:
    repo = new_repo(ecr, scan_on_push=True)
    image = IMAGES["languages"]()
    digest = push(ecr, repo, image, "v1")
    wait(ecr, repo, "v1")
    found = findings(ecr, repo, "v1")
    assert as_expected(found) == image.expected_findings()
    assert len(found) == len(image.expected_findings())
    log4shell = next(f for f in found if f["name"] == "CVE-2021-44228")
    assert log4shell["severity"] == "CRITICAL"
    assert log4shell["CVSS3_SCORE"] == "10"
    assert log4shell["uri"].startswith("https://")
    answer = ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": digest})
    assert answer["imageScanStatus"]["status"] == "COMPLETE"
    assert answer["imageScanFindings"]["findingSeverityCounts"] == {
        "CRITICAL": 1,
        "HIGH": 1,
        "MEDIUM": 2,
    }
    (detail,) = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])[
        "imageDetails"
    ]
    assert detail["imageScanStatus"]["status"] == "COMPLETE"
    summary = detail["imageScanFindingsSummary"]
    assert summary["findingSeverityCounts"] == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 2}
    assert summary["imageScanCompletedAt"].timestamp() <= time.time() + 1
    assert summary["vulnerabilitySourceUpdatedAt"] <= summary["imageScanCompletedAt"]


def test_start_image_scan_and_its_daily_quota(ecr: ECRClient) -> None:
    repo = new_repo(ecr)
    image = IMAGES["debian"]()
    digest = push(ecr, repo, image, "v1")
    with pytest.raises(ClientError) as never:
        ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
    assert error_code(never) == "ScanNotFoundException"
    (detail,) = ecr.describe_images(repositoryName=repo)["imageDetails"]
    assert "imageScanStatus" not in detail
    started = ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
    assert started["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert started["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    with pytest.raises(ClientError) as again:
        ecr.start_image_scan(repositoryName=repo, imageId={"imageDigest": digest})
    assert error_code(again) == "LimitExceededException"
    wait(ecr, repo, "v1")
    assert as_expected(findings(ecr, repo, "v1")) == image.expected_findings()


def test_errors_of_the_scan_operations(ecr: ECRClient) -> None:
    repo = new_repo(ecr)
    with pytest.raises(ClientError) as missing_image:
        ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "nope"})
    assert error_code(missing_image) == "ImageNotFoundException"
    with pytest.raises(ClientError) as missing_repo:
        ecr.describe_image_scan_findings(repositoryName="scan/none", imageId={"imageTag": "x"})
    assert error_code(missing_repo) == "RepositoryNotFoundException"
    push(ecr, repo, IMAGES["alpine"](), "v1")
    ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
    wait(ecr, repo, "v1")
    with pytest.raises(ClientError) as bad_token:
        ecr.describe_image_scan_findings(
            repositoryName=repo, imageId={"imageTag": "v1"}, nextToken="garbage"
        )
    assert error_code(bad_token) == "InvalidParameterException"


def test_unsupported_image(ecr: ECRClient) -> None:
    repo = new_repo(ecr, scan_on_push=True)
    push(ecr, repo, IMAGES["unsupported"](), "v1")

    def finished() -> dict[str, Any] | None:
        found = ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
        status: dict[str, Any] = dict(found["imageScanStatus"])
        return None if status["status"] == "IN_PROGRESS" else status

    status = wait_until(finished, timeout=30, interval=0.2, message="the scan never finished")
    assert status["status"] == "UNSUPPORTED_IMAGE"
    assert status["description"]


def test_registry_and_repository_scanning_configuration(ecr: ECRClient) -> None:
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == {
        "scanType": "BASIC",
        "rules": [],
    }
    rules: Any = [
        {
            "scanFrequency": "CONTINUOUS_SCAN",
            "repositoryFilters": [{"filter": "scan/prod-*", "filterType": "WILDCARD"}],
        },
        {
            "scanFrequency": "SCAN_ON_PUSH",
            "repositoryFilters": [{"filter": "scan/push-*", "filterType": "WILDCARD"}],
        },
    ]
    put = ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    assert put["registryScanningConfiguration"]["rules"] == rules
    got = ecr.get_registry_scanning_configuration()
    assert got["scanningConfiguration"]["rules"] == rules
    for name in ("scan/prod-api", "scan/push-api", "scan/manual"):
        ecr.create_repository(repositoryName=name)
    answer = ecr.batch_get_repository_scanning_configuration(
        repositoryNames=["scan/prod-api", "scan/push-api", "scan/manual", "scan/missing"]
    )
    by_name = {c["repositoryName"]: c for c in answer["scanningConfigurations"]}
    assert by_name["scan/prod-api"]["scanFrequency"] == "CONTINUOUS_SCAN"
    assert by_name["scan/prod-api"]["appliedScanFilters"] == rules[0]["repositoryFilters"]
    assert by_name["scan/push-api"]["scanFrequency"] == "SCAN_ON_PUSH"
    assert by_name["scan/push-api"]["scanOnPush"] is True
    assert by_name["scan/manual"]["scanFrequency"] == "MANUAL"
    assert by_name["scan/manual"]["scanOnPush"] is False
    assert answer["failures"] == [
        {
            "repositoryName": "scan/missing",
            "failureCode": "REPOSITORY_NOT_FOUND",
            "failureReason": "REPOSITORY_NOT_FOUND",
        }
    ]
    changed = ecr.put_image_scanning_configuration(
        repositoryName="scan/manual", imageScanningConfiguration={"scanOnPush": True}
    )
    assert changed["imageScanningConfiguration"] == {"scanOnPush": True}
    (described,) = ecr.describe_repositories(repositoryNames=["scan/manual"])["repositories"]
    assert described["imageScanningConfiguration"] == {"scanOnPush": True}
    for bad in (
        {"scanType": "ENHANCED", "rules": []},
        {
            "scanType": "BASIC",
            "rules": [
                {
                    "scanFrequency": "SCAN_ON_PUSH",
                    "repositoryFilters": [{"filter": "UPPER", "filterType": "WILDCARD"}],
                }
            ],
        },
    ):
        with pytest.raises(ClientError) as refused:
            ecr.put_registry_scanning_configuration(**bad)  # type: ignore[arg-type]
        assert error_code(refused) in ("InvalidParameterException", "ValidationException")
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])


def test_sbom_is_a_referrer_and_exports_from_the_cli(
    ecr: ECRClient, ecr_server: RegistryServer
) -> None:
    repo = new_repo(ecr, scan_on_push=True)
    digest = push(ecr, repo, IMAGES["alpine"](), "v1")
    wait(ecr, repo, "v1")
    referrers = wait_until(
        lambda: ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": digest})[
            "referrers"
        ],
        timeout=30,
        interval=0.2,
        message="the SBOM never became a referrer of the image",
    )
    (referrer,) = referrers
    assert referrer["artifactType"] == SBOM
    with ecr_server.client() as client:
        index = client.get(f"/v2/{repo}/referrers/{digest}").json()
        assert [m["artifactType"] for m in index["manifests"]] == [SBOM]
        manifest = client.get(
            f"/v2/{repo}/manifests/{referrer['digest']}",
            headers={"Accept": OCI_MANIFEST},
        ).json()
        blob = client.get(f"/v2/{repo}/blobs/{manifest['layers'][0]['digest']}").json()
    assert blob["bomFormat"] == "CycloneDX"
    assert {"busybox", "minimist"} <= {c["name"] for c in blob["components"]}
    exported = json.loads(cargohold(ecr_server, "sbom", "export", repo, "v1").stdout)
    assert exported == blob
