"""Pull times and pull-time update exclusions through boto3 against a live server: a `/v2/`
pull by tag or by digest, and BatchGetImage, move `lastRecordedPullTime`; the pulls of an
excluded principal do not; Register/Deregister/ListPullTimeUpdateExclusions and their errors."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.server import RegistryServer
from support.v2 import TinyImage, push_image

ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"
_NUMBERS = itertools.count()


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture
def pushed(ecr: Any, ecr_server: RegistryServer) -> tuple[str, str]:
    name = f"pulls/repo-{next(_NUMBERS)}"
    ecr.create_repository(repositoryName=name)
    image = TinyImage.make(name)
    with ecr_server.client() as client:
        assert push_image(client, name, "v1", image).status_code == 201
    return name, image.digest


@pytest.fixture
def admin_excluded(ecr: Any) -> Iterator[None]:
    ecr.register_pull_time_update_exclusion(principalArn=ADMIN)
    try:
        yield
    finally:
        ecr.deregister_pull_time_update_exclusion(principalArn=ADMIN)


def pull_time(ecr: Any, name: str) -> Any:
    (detail,) = ecr.describe_images(repositoryName=name)["imageDetails"]
    return detail.get("lastRecordedPullTime")


def test_pulls_by_tag_and_by_digest_move_it(
    ecr: Any, ecr_server: RegistryServer, pushed: tuple[str, str]
) -> None:
    name, digest = pushed
    assert pull_time(ecr, name) is None
    with ecr_server.client() as client:
        assert client.head(f"/v2/{name}/manifests/v1").status_code == 200
        assert pull_time(ecr, name) is None  # a HEAD is not a pull
        assert client.get(f"/v2/{name}/manifests/{digest}").status_code == 200
    assert pull_time(ecr, name) is not None


def test_batch_get_image_moves_it(ecr: Any, pushed: tuple[str, str]) -> None:
    name, _ = pushed
    ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])
    assert pull_time(ecr, name) is not None


def test_excluded_pulls_do_not_move_it(
    ecr: Any, ecr_server: RegistryServer, pushed: tuple[str, str], admin_excluded: None
) -> None:
    name, _ = pushed
    with ecr_server.client() as client:
        assert client.get(f"/v2/{name}/manifests/v1").status_code == 200
    ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])
    assert pull_time(ecr, name) is None


def test_exclusion_operations(ecr: Any, admin_excluded: None) -> None:
    other = f"arn:aws:iam::{ACCOUNT}:role/ci"
    registered = ecr.register_pull_time_update_exclusion(principalArn=other)
    assert registered["principalArn"] == other and "createdAt" in registered
    listed = ecr.list_pull_time_update_exclusions()
    assert listed["pullTimeUpdateExclusions"] == [other, ADMIN]  # by ARN
    first = ecr.list_pull_time_update_exclusions(maxResults=1)
    assert first["pullTimeUpdateExclusions"] == [other]
    second = ecr.list_pull_time_update_exclusions(maxResults=1, nextToken=first["nextToken"])
    assert second["pullTimeUpdateExclusions"] == [ADMIN] and "nextToken" not in second
    code, message = error_of(lambda: ecr.register_pull_time_update_exclusion(principalArn=other))
    assert code == "ExclusionAlreadyExistsException" and other in message
    assert ecr.deregister_pull_time_update_exclusion(principalArn=other)["principalArn"] == other
    code, _ = error_of(lambda: ecr.deregister_pull_time_update_exclusion(principalArn=other))
    assert code == "ExclusionNotFoundException"
    code, _ = error_of(
        lambda: ecr.register_pull_time_update_exclusion(principalArn="arn:aws:s3:::bucket")
    )
    assert code == "ValidationException"


def test_the_aws_cli(ecr_server: RegistryServer) -> None:
    aws = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(ecr_server.data_dir),
        **ecr_server.admin_credentials(),
    }
    arn = f"arn:aws:iam::{ACCOUNT}:user/cli"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [aws, "ecr", "--endpoint-url", ecr_server.url, "--output", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    registered = run("register-pull-time-update-exclusion", "--principal-arn", arn)
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["principalArn"] == arn
    again = run("register-pull-time-update-exclusion", "--principal-arn", arn)
    assert again.returncode != 0 and "ExclusionAlreadyExistsException" in again.stderr
    listed = json.loads(run("list-pull-time-update-exclusions").stdout)
    assert arn in listed["pullTimeUpdateExclusions"]
    assert run("deregister-pull-time-update-exclusion", "--principal-arn", arn).returncode == 0
    gone = run("deregister-pull-time-update-exclusion", "--principal-arn", arn)
    assert gone.returncode != 0 and "ExclusionNotFoundException" in gone.stderr
