"""ECR's own answers where IAM or a plain echo would differ: a KMS repository without a key names
the account's AWS managed key, and a repository policy may repeat a Sid. boto3 against a live
server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.databases import DATABASES, config_file, database_for_server
from support.fixtures import LiveServers
from support.server import RegistryServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
MANAGED_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/ecr"


@pytest.fixture(scope="module", params=DATABASES)
def server(
    request: pytest.FixtureRequest,
    live_servers: LiveServers,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RegistryServer]:
    with database_for_server(request.param) as url:
        config = config_file(tmp_path_factory.mktemp("config") / "cargohold.toml", url)
        options = ("--config", str(config))
        server = live_servers.start(f"answers-{request.param}", extra_args=options)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def ecr(server: RegistryServer) -> Any:
    return server.ecr_client()


@pytest.mark.parametrize("kind", ["KMS", "KMS_DSSE"])
def test_kms_without_a_key_uses_the_aws_managed_key(ecr: Any, kind: str) -> None:
    name = f"kms-default-{kind.lower()}"
    created = ecr.create_repository(
        repositoryName=name, encryptionConfiguration={"encryptionType": kind}
    )["repository"]

    expected = {"encryptionType": kind, "kmsKey": MANAGED_KEY}
    assert created["encryptionConfiguration"] == expected
    described = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert described["encryptionConfiguration"] == expected


def test_kms_with_a_key_keeps_it_and_aes256_names_none(ecr: Any) -> None:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    own = ecr.create_repository(
        repositoryName="kms-own-key",
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key},
    )["repository"]
    plain = ecr.create_repository(repositoryName="aes-default")["repository"]

    assert own["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": key}
    assert plain["encryptionConfiguration"] == {"encryptionType": "AES256"}


def pull_policy(sid: str) -> str:
    statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["ecr:BatchGetImage"],
    }
    second = {**statement, "Action": ["ecr:GetDownloadUrlForLayer"]}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement, second]})


def test_a_repository_policy_may_repeat_a_sid(ecr: Any) -> None:
    ecr.create_repository(repositoryName="repeated-sid")
    text = pull_policy("pull")

    answer = ecr.set_repository_policy(repositoryName="repeated-sid", policyText=text)

    assert json.loads(answer["policyText"]) == json.loads(text)
    stored = ecr.get_repository_policy(repositoryName="repeated-sid")["policyText"]
    assert [s["Sid"] for s in json.loads(stored)["Statement"]] == ["pull", "pull"]


def test_iam_still_refuses_a_repeated_sid(server: RegistryServer) -> None:
    iam = server.iam_client()
    statement = {"Sid": "same", "Effect": "Allow", "Action": "ecr:ListImages", "Resource": "*"}
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement, statement]})

    with pytest.raises(ClientError) as caught:
        iam.create_policy(PolicyName="repeated-sid", PolicyDocument=text)

    assert caught.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    assert caught.value.response["Error"]["Message"] == (
        "Statement IDs (SID) in a single policy must be unique."
    )
