"""ECR's lifecycle operations through boto3 and the `aws` CLI against a live server:
Put/Get/DeleteLifecyclePolicy, previews (IN_PROGRESS to COMPLETE, pages, filters, summary),
each exception with ECR's words, `cargohold lifecycle run`, and a pushed image's status."""

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

ACCOUNT = "123456789012"
INVALID = (
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
    "'Lifecycle policy validation failure: "
)
_NUMBERS = itertools.count()


def policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def keep(n: int, priority: int = 1, status: str = "untagged", **extra: Any) -> dict[str, Any]:
    return {
        "rulePriority": priority,
        "description": f"keep the newest {n}",
        "selection": {
            "tagStatus": status,
            "countType": "imageCountMoreThan",
            "countNumber": n,
            **extra,
        },
        "action": {"type": "expire"},
    }


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


@pytest.fixture
def repository(ecr: Any) -> str:
    name = f"lifecycle/repo-{next(_NUMBERS)}"
    ecr.create_repository(repositoryName=name)
    return name


def push(server: RegistryServer, repository: str, tags: list[str]) -> list[str]:
    digests = []
    with server.client() as client:
        for i, tag in enumerate(tags):
            image = TinyImage.make(f"{repository}-{i}-{tag}")
            assert push_image(client, repository, tag, image).status_code == 201
            digests.append(image.digest)
    return digests


def test_put_get_delete(ecr: Any, repository: str) -> None:
    text = policy(keep(3))
    put = ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=text)
    named = {"registryId": ACCOUNT, "repositoryName": repository}
    assert {k: put[k] for k in ("registryId", "repositoryName", "lifecyclePolicyText")} == {
        **named,
        "lifecyclePolicyText": text,
    }
    got = ecr.get_lifecycle_policy(repositoryName=repository)
    assert got["lifecyclePolicyText"] == text and got["repositoryName"] == repository
    deleted = ecr.delete_lifecycle_policy(repositoryName=repository)
    assert deleted["lifecyclePolicyText"] == text
    code, message = error_of(lambda: ecr.get_lifecycle_policy(repositoryName=repository))
    assert code == "LifecyclePolicyNotFoundException"
    assert message == (
        f"Lifecycle policy does not exist for the repository with name '{repository}' in the "
        f"registry with id '{ACCOUNT}'"
    )
    code, _ = error_of(lambda: ecr.delete_lifecycle_policy(repositoryName=repository))
    assert code == "LifecyclePolicyNotFoundException"


def test_refusals(ecr: Any, repository: str) -> None:
    text = policy(keep(1))
    code, message = error_of(
        lambda: ecr.put_lifecycle_policy(repositoryName="lifecycle/gone", lifecyclePolicyText=text)
    )
    assert code == "RepositoryNotFoundException" and "'lifecycle/gone' does not exist" in message
    two_untagged = policy(keep(1), keep(2, priority=2))
    code, message = error_of(
        lambda: ecr.put_lifecycle_policy(
            repositoryName=repository, lifecyclePolicyText=two_untagged
        )
    )
    assert code == "InvalidParameterException"
    assert message == INVALID + "Only one rule can select Untagged images per storage class.'"
    wild = policy(keep(1, status="tagged", tagPatternList=["a*b*c*d*e*"]))
    code, message = error_of(
        lambda: ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=wild)
    )
    assert code == "InvalidParameterException" and "more than 4 wildcards" in message
    not_json = "x" * 120
    code, message = error_of(
        lambda: ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=not_json)
    )
    assert message == INVALID + "Could not map policyString into LifecyclePolicy.'"
    code, _ = error_of(lambda: ecr.start_lifecycle_policy_preview(repositoryName=repository))
    assert code == "LifecyclePolicyNotFoundException"
    code, message = error_of(lambda: ecr.get_lifecycle_policy_preview(repositoryName=repository))
    assert code == "LifecyclePolicyPreviewNotFoundException"
    assert repository in message


def wait_complete(ecr: Any, repository: str, **params: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def complete() -> bool:
        found.update(ecr.get_lifecycle_policy_preview(repositoryName=repository, **params))
        return bool(found["status"] == "COMPLETE")

    wait_until(complete, timeout=30, interval=0.1, message="the preview did not complete")
    return found


def test_preview_pages_filters_and_summary(
    ecr: Any, ecr_server: RegistryServer, repository: str
) -> None:
    tagged = push(ecr_server, repository, [f"build-{i}" for i in range(7)])
    # Untagged images: each push of a tag moved elsewhere leaves its image untagged.
    untagged = push(ecr_server, repository, ["moving"] * 4)[:3]
    text = policy(
        keep(1),
        keep(2, priority=2, status="tagged", tagPrefixList=["build"]),
    )
    started = ecr.start_lifecycle_policy_preview(
        repositoryName=repository, lifecyclePolicyText=text
    )
    assert started["status"] == "IN_PROGRESS" and started["lifecyclePolicyText"] == text
    first = wait_complete(ecr, repository, maxResults=3)
    assert first["summary"] == {"expiringImageTotalCount": 5 + 2}
    results = list(first["previewResults"])
    assert len(results) == 3 and "nextToken" in first
    token = first["nextToken"]
    while token:
        page = ecr.get_lifecycle_policy_preview(
            repositoryName=repository, maxResults=3, nextToken=token
        )
        results += page["previewResults"]
        token = page.get("nextToken")
    expired = {r["imageDigest"]: r for r in results}
    assert set(expired) == set(tagged[:5]) | set(untagged[:2])
    one = expired[tagged[0]]
    assert one["imageTags"] == ["build-0"] and one["appliedRulePriority"] == 2
    assert one["action"] == {"type": "EXPIRE"} and one["storageClass"] == "STANDARD"
    only_untagged = ecr.get_lifecycle_policy_preview(
        repositoryName=repository, filter={"tagStatus": "UNTAGGED"}
    )
    assert {r["imageDigest"] for r in only_untagged["previewResults"]} == set(untagged[:2])
    by_id = ecr.get_lifecycle_policy_preview(
        repositoryName=repository, imageIds=[{"imageTag": "build-1"}]
    )
    assert [r["imageDigest"] for r in by_id["previewResults"]] == [tagged[1]]
    code, _ = error_of(
        lambda: ecr.get_lifecycle_policy_preview(repositoryName=repository, nextToken="nope")
    )
    assert code == "InvalidParameterException"


def _cargohold(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", *args], capture_output=True, text=True, timeout=120
    )


def test_lifecycle_run_command(ecr: Any, ecr_server: RegistryServer, repository: str) -> None:
    digests = push(ecr_server, repository, ["a", "b", "c"])
    ecr.put_lifecycle_policy(
        repositoryName=repository,
        lifecyclePolicyText=policy(keep(1, status="any")),
    )
    data = ["--data-dir", str(ecr_server.data_dir)]
    ran = _cargohold("lifecycle", "run", repository, *data)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].split("\t")[:4] == ["expired", repository, digests[0], "a"]
    assert lines[-1] == "1 repositories evaluated: 2 images expired, 0 transitioned to archive"
    left = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert [d["imageDigest"] for d in left] == [digests[2]]
    assert "lastEvaluatedAt" in ecr.get_lifecycle_policy(repositoryName=repository)
    missing = _cargohold("lifecycle", "run", "lifecycle/none-such", *data)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def _aws() -> str:
    found = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    if not Path(found).exists():
        pytest.fail("the aws CLI (PyPI awscli) is not installed", pytrace=False)
    return found


def test_the_aws_cli(ecr_server: RegistryServer, repository: str) -> None:
    creds = ecr_server.admin_credentials()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(ecr_server.data_dir), **creds}
    base = [_aws(), "ecr", "--endpoint-url", ecr_server.url, "--output", "json"]
    text = policy(keep(5))

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=120)

    put = aws(
        "put-lifecycle-policy", "--repository-name", repository, "--lifecycle-policy-text", text
    )
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["lifecyclePolicyText"] == text
    preview = aws("start-lifecycle-policy-preview", "--repository-name", repository)
    assert json.loads(preview.stdout)["status"] == "IN_PROGRESS"
    wait_until(
        lambda: (
            json.loads(aws("get-lifecycle-policy-preview", "--repository-name", repository).stdout)[
                "status"
            ]
            == "COMPLETE"
        ),
        timeout=30,
        interval=0.2,
        message="the preview did not complete",
    )
    bad = aws(
        "put-lifecycle-policy",
        "--repository-name",
        repository,
        "--lifecycle-policy-text",
        policy(keep(1), keep(2, priority=2)),
    )
    assert bad.returncode != 0
    assert "InvalidParameterException" in bad.stderr
    assert "Only one rule can select Untagged images per storage class." in bad.stderr
    aws("delete-lifecycle-policy", "--repository-name", repository)
    missing = aws("get-lifecycle-policy", "--repository-name", repository)
    assert missing.returncode != 0
    assert "LifecyclePolicyNotFoundException" in missing.stderr
