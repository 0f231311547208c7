"""The archive storage class through boto3 and the `aws` CLI against a live server:
UpdateImageStorageClass, an archived image's 404 on `/v2/` and its BatchGetImage failure,
ListImages/DescribeImages under their `imageStatus` filters with `lastArchivedAt` and
`lastActivatedAt`, restoring through ACTIVATING to ACTIVE, by the API and by a new push."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.server import RegistryServer
from support.v2 import TinyImage, push_image
from support.waiting import wait_until

_NUMBERS = itertools.count()


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture
def pushed(ecr: Any, ecr_server: RegistryServer) -> tuple[str, TinyImage]:
    name = f"archive/repo-{next(_NUMBERS)}"
    ecr.create_repository(repositoryName=name)
    image = TinyImage.make(name)
    with ecr_server.client() as client:
        assert push_image(client, name, "v1", image).status_code == 201
    return name, image


def status_of(ecr: Any, name: str) -> dict[str, Any]:
    (detail,) = ecr.describe_images(repositoryName=name, filter={"imageStatus": "ANY"})[
        "imageDetails"
    ]
    return dict(detail)


def wait_active(ecr: Any, name: str) -> dict[str, Any]:
    wait_until(
        lambda: status_of(ecr, name)["imageStatus"] == "ACTIVE",
        timeout=30,
        interval=0.1,
        message="the image did not become ACTIVE",
    )
    return status_of(ecr, name)


def test_archive_and_restore(
    ecr: Any, ecr_server: RegistryServer, pushed: tuple[str, TinyImage]
) -> None:
    name, image = pushed
    answer = ecr.update_image_storage_class(
        repositoryName=name, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE"
    )
    assert answer["imageStatus"] == "ARCHIVED"
    assert answer["imageId"] == {"imageDigest": image.digest, "imageTag": "v1"}
    with ecr_server.client() as client:
        for reference in ("v1", image.digest):
            gone = client.get(f"/v2/{name}/manifests/{reference}")
            assert gone.status_code == 404
            assert gone.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    failures = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["failures"]
    assert [f["failureCode"] for f in failures] == ["ImageNotFound"]
    assert ecr.list_images(repositoryName=name)["imageIds"] == []
    archived = ecr.list_images(repositoryName=name, filter={"imageStatus": "ARCHIVED"})
    assert archived["imageIds"] == [{"imageDigest": image.digest, "imageTag": "v1"}]
    assert ecr.describe_images(repositoryName=name)["imageDetails"] == []
    detail = ecr.describe_images(repositoryName=name, filter={"imageStatus": "ARCHIVED"})[
        "imageDetails"
    ][0]
    assert detail["imageStatus"] == "ARCHIVED" and "lastArchivedAt" in detail
    restoring = ecr.update_image_storage_class(
        repositoryName=name, imageId={"imageDigest": image.digest}, targetStorageClass="STANDARD"
    )
    assert restoring["imageStatus"] == "ACTIVATING"
    restored = wait_active(ecr, name)
    assert restored["lastActivatedAt"] >= restored["lastArchivedAt"]
    with ecr_server.client() as client:
        assert client.get(f"/v2/{name}/manifests/v1").status_code == 200


def test_a_new_push_restores(
    ecr: Any, ecr_server: RegistryServer, pushed: tuple[str, TinyImage]
) -> None:
    name, image = pushed
    ecr.update_image_storage_class(
        repositoryName=name, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE"
    )
    with ecr_server.client() as client:
        assert push_image(client, name, "v1", image).status_code == 201
    assert "lastActivatedAt" in wait_active(ecr, name)


def test_errors(ecr: Any, pushed: tuple[str, TinyImage]) -> None:
    name, _ = pushed
    code, message = error_of(
        lambda: ecr.update_image_storage_class(
            repositoryName=name, imageId={"imageTag": "nope"}, targetStorageClass="ARCHIVE"
        )
    )
    assert code == "ImageNotFoundException" and "imageTag:'nope'" in message
    code, _ = error_of(
        lambda: ecr.update_image_storage_class(
            repositoryName="archive/none", imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE"
        )
    )
    assert code == "RepositoryNotFoundException"
    code, _ = error_of(
        lambda: ecr.update_image_storage_class(
            repositoryName=name, imageId={"imageTag": "v1"}, targetStorageClass="GLACIER"
        )
    )
    assert code == "ValidationException"


def test_the_aws_cli(ecr_server: RegistryServer, pushed: tuple[str, TinyImage]) -> None:
    name, image = pushed
    aws = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(ecr_server.data_dir),
        **ecr_server.admin_credentials(),
    }
    result = subprocess.run(
        [
            aws,
            "ecr",
            "--endpoint-url",
            ecr_server.url,
            "--output",
            "json",
            "update-image-storage-class",
            "--repository-name",
            name,
            "--image-id",
            f"imageDigest={image.digest}",
            "--target-storage-class",
            "ARCHIVE",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["imageStatus"] == "ARCHIVED"
