"""Request validation against a live server: model patterns are decided in linear time, so no
request (unsigned, signed by a principal with no policies, or by the administrator) stalls the
other clients; and constraint violations answer in ECR's own words.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from support.fixtures import LiveServers
from support.server import RegistryServer

TARGET = "AmazonEC2ContainerRegistry_V20150921.PutRegistryScanningConfiguration"
#: The repository filter pattern backtracks exponentially from about 20 characters on.
LENGTHS = (22, 30, 10_000)


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("validation-server")


@pytest.fixture(scope="module")
def nobody(server: RegistryServer) -> dict[str, str]:
    """The key of an IAM user with no policies at all."""
    iam = server.iam_client()
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def unvalidated(server: RegistryServer, **session: str) -> Any:
    """An ECR client that sends what it is given (botocore checks no pattern anyway)."""
    creds = server.admin_credentials()
    return boto3.client(
        "ecr",
        endpoint_url=server.url,
        region_name=creds["AWS_DEFAULT_REGION"],
        aws_access_key_id=session.get("key", creds["AWS_ACCESS_KEY_ID"]),
        aws_secret_access_key=session.get("secret", creds["AWS_SECRET_ACCESS_KEY"]),
        config=BotoConfig(retries={"max_attempts": 1}, parameter_validation=False),
    )


def scanning_rules(length: int) -> list[dict[str, Any]]:
    return [
        {
            "scanFrequency": "SCAN_ON_PUSH",
            "repositoryFilters": [{"filter": "a" * length + "!", "filterType": "WILDCARD"}],
        }
    ]


def refused(call: Any, **params: Any) -> tuple[str, str, float]:
    """The error code and message of a refused call, and how long it took."""
    started = time.perf_counter()
    with pytest.raises(ClientError) as caught:
        call(**params)
    took = time.perf_counter() - started
    error = caught.value.response["Error"]
    status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, caught.value.response
    return error["Code"], error["Message"], took


@pytest.mark.parametrize("length", LENGTHS)
def test_the_reported_repository_filter_answers_at_once(
    server: RegistryServer, nobody: dict[str, str], length: int
) -> None:
    admin = unvalidated(server)
    code, message, took = refused(
        admin.put_registry_scanning_configuration, scanType="BASIC", rules=scanning_rules(length)
    )
    # PutRegistryScanningConfiguration lists ValidationException: ECR answers it.
    assert code == "ValidationException"
    assert "rules.1.member.repositoryFilters.1.member.filter" in message
    assert "Member must satisfy regular expression pattern" in message
    assert took < 1.0
    code, _, took = refused(
        unvalidated(server, **nobody).put_registry_scanning_configuration,
        scanType="BASIC",
        rules=scanning_rules(length),
    )
    assert code in ("ValidationException", "AccessDeniedException")
    assert took < 1.0


def adversarial_requests(server: RegistryServer, nobody: dict[str, str]) -> Iterator[None]:
    """One adversarial request per step: unsigned, signed by a principal with no policies,
    signed by the administrator; each with the filter that backtracks, or a body as large as
    the operation allows."""
    clients = [unvalidated(server, **nobody), unvalidated(server)]
    body = b'{"scanType":"BASIC","rules":[{"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":'
    body += b'[{"filterType":"WILDCARD","filter":"' + b"a" * 40 + b'!"}]}]}'
    junk = b'{"scanType":"BASIC","rules":[' + b",".join([b"1"] * 400_000) + b"]}"
    headers = {"x-amz-target": TARGET, "content-type": "application/x-amz-json-1.1"}
    with httpx.Client(base_url=server.url, timeout=30) as raw:
        for round_ in range(10):
            for payload in (body, junk):
                answer = raw.post("/", content=payload, headers=headers)
                assert 400 <= answer.status_code < 500, answer.text
                yield
            for client in clients:
                refused(
                    client.put_registry_scanning_configuration,
                    scanType="BASIC",
                    rules=scanning_rules(30 + round_),
                )
                yield
                refused(
                    client.describe_repositories,
                    repositoryNames=["a" * 30 + "!" + "a" * round_],
                )
                yield


def test_other_clients_stay_fast_while_adversarial_requests_arrive(
    server: RegistryServer, nobody: dict[str, str]
) -> None:
    latencies: list[float] = []
    failures: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        with server.client(timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                answer = client.get("/v2/")
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    failures.append(answer.status_code)

    poller = threading.Thread(target=poll, daemon=True)
    with server.client() as warm:
        assert warm.get("/v2/").status_code == 200
    poller.start()
    try:
        sent = sum(1 for _ in adversarial_requests(server, nobody))
    finally:
        stop.set()
        poller.join(timeout=60)
    assert sent == 60
    assert not failures
    assert len(latencies) >= 100, len(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"GET /v2/ p99 {p99 * 1000:.1f} ms over {len(latencies)} polls, {sent} adversarial")
    assert p99 < 0.100, f"p99 {p99 * 1000:.1f} ms over {len(latencies)} polls"


def test_constraint_violations_answer_in_ecr_words(server: RegistryServer) -> None:
    ecr = unvalidated(server)
    code, message, _ = refused(ecr.create_repository, repositoryName="Team/App")
    assert code == "InvalidParameterException"
    assert message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy "
        "regular expression '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)"
        "[a-z0-9]+)*)*''"
    )
    code, message, _ = refused(ecr.create_repository, repositoryName="a")
    assert (code, message) == (
        "InvalidParameterException",
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        "'must have length greater than or equal to 2'",
    )
    ecr.create_repository(repositoryName="valid")
    code, message, _ = refused(
        ecr.put_image_tag_mutability, repositoryName="valid", imageTagMutability="SOMETIMES"
    )
    assert code == "InvalidParameterException"
    assert message.startswith(
        "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: "
        "'Member must satisfy enum value set: ["
    )
    code, message, _ = refused(
        ecr.list_images, repositoryName="valid", filter={"tagStatus": "SOMETIMES"}
    )
    assert code == "InvalidParameterException"
    assert message.startswith("Invalid parameter at 'filter.tagStatus' failed to satisfy")
    code, message, _ = refused(ecr.batch_get_image, repositoryName="valid", imageIds=[])
    assert (code, message) == (
        "InvalidParameterException",
        "Invalid parameter at 'imageIds' failed to satisfy constraint: "
        "'Member must have length greater than or equal to 1'",
    )
    # Operations that list ValidationException answer it, in AWS's validation words.
    code, message, _ = refused(
        ecr.put_image_scanning_configuration,
        repositoryName="valid",
        imageScanningConfiguration={"scanOnPush": True},
        registryId="not-an-account",
    )
    assert code == "ValidationException"
    assert message.startswith("1 validation error detected: Value 'not-an-account' at 'registryId'")
    # boto3 models both; the modelled exception class is what clients catch.
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.describe_repositories(repositoryNames=["UPPER"])


def test_bodies_are_bounded_before_they_are_parsed(server: RegistryServer) -> None:
    ecr = unvalidated(server)
    ecr.create_repository(repositoryName="bounded")
    # An operation without a large payload takes at most 1 MiB.
    tags = [{"Key": f"k{i}", "Value": "v" * 40} for i in range(25_000)]
    arn = ecr.describe_repositories(repositoryNames=["bounded"])["repositories"][0]
    with pytest.raises(ClientError) as caught:
        ecr.tag_resource(resourceArn=arn["repositoryArn"], tags=tags)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert caught.value.response["Error"]["Code"] == "SerializationException"
    # PutImage carries a manifest of up to 4 MiB, but not millions of values.
    code, message, took = refused(
        ecr.put_image, repositoryName="bounded", imageManifest=",:" * 600_000, imageTag="t"
    )
    assert (code, message) == ("SerializationException", "the request body holds too many values")
    assert took < 1.0
    # A large manifest of ordinary density is read (and refused for what it says).
    manifest = '{"schemaVersion":2,"annotations":{' + ",".join(
        f'"k{i}":"{"v" * 40}"' for i in range(40_000)
    )
    code, _, _ = refused(ecr.put_image, repositoryName="bounded", imageManifest=manifest + "}}")
    assert code != "SerializationException"
