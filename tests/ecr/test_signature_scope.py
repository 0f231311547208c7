"""What a valid signature must also say: the region and service it is scoped to, and, for an AWS
JSON call, the operation (`X-Amz-Target` is signed). Live server in `eu-west-1`, real boto3
clients and raw botocore-signed requests."""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from support.fixtures import LiveServers
from support.server import RegistryServer

REGION = "eu-west-1"
TARGET = "AmazonEC2ContainerRegistry_V20150921."
JSON = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@pytest.fixture(scope="module")
def server(live_servers: LiveServers, tmp_path_factory: pytest.TempPathFactory) -> RegistryServer:
    config = tmp_path_factory.mktemp("scope-config") / "cargohold.toml"
    config.write_text(f'region = "{REGION}"\n')
    return live_servers.start("scope-server", extra_args=("--config", str(config)))


def client(server: RegistryServer, service: str, region: str) -> Any:
    creds = server.admin_credentials()
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def signed(
    server: RegistryServer,
    *,
    service: str,
    body: bytes,
    headers: dict[str, str],
    region: str = REGION,
) -> AWSRequest:
    creds = server.admin_credentials()
    request = AWSRequest(method="POST", url=f"{server.url}/", data=body, headers=headers)
    credentials = Credentials(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])
    SigV4Auth(credentials, service, region).add_auth(request)
    return request


def send(
    server: RegistryServer,
    request: AWSRequest,
    *,
    body: bytes | None = None,
    query: str = "",
    **changed: str,
) -> httpx.Response:
    headers = dict(request.headers.items())
    for name, value in changed.items():
        headers[name.replace("_", "-")] = value
    url = f"{server.url}/{'?' + query if query else ''}"
    content = request.body if body is None else body
    return httpx.post(url, content=content, headers=headers, timeout=30)


def ecr_call(server: RegistryServer, operation: str, params: dict[str, Any]) -> AWSRequest:
    return signed(
        server,
        service="ecr",
        body=json.dumps(params).encode(),
        headers={"Content-Type": JSON, "X-Amz-Target": TARGET + operation},
    )


def repository_names(server: RegistryServer) -> list[str]:
    found = client(server, "ecr", REGION).describe_repositories()["repositories"]
    return [repository["repositoryName"] for repository in found]


# -- the credential scope's region -------------------------------------------------------------


def test_an_ecr_client_of_the_registry_region_is_served(server: RegistryServer) -> None:
    assert client(server, "ecr", REGION).describe_registry()["registryId"] == "123456789012"


@pytest.mark.parametrize("region", ["us-east-1", "xx-west-9"])
def test_an_ecr_client_of_another_region_is_refused(server: RegistryServer, region: str) -> None:
    with pytest.raises(ClientError) as caught:
        client(server, "ecr", region).describe_repositories()

    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "InvalidSignatureException"
    assert error["Message"] == f"Credential should be scoped to a valid region, not '{region}'. "


@pytest.mark.parametrize("service", ["iam", "sts"])
@pytest.mark.parametrize("region", [REGION, "us-east-1"])
def test_iam_and_sts_take_the_registry_region_and_their_global_one(
    server: RegistryServer, service: str, region: str
) -> None:
    aws = client(server, service, region)
    if service == "iam":
        assert aws.get_user()["User"]["Arn"].startswith("arn:aws:iam::123456789012:")
    else:
        assert aws.get_caller_identity()["Account"] == "123456789012"


@pytest.mark.parametrize("service", ["iam", "sts"])
def test_iam_and_sts_refuse_any_other_region(server: RegistryServer, service: str) -> None:
    aws = client(server, service, "xx-west-9")
    call = aws.get_user if service == "iam" else aws.get_caller_identity
    with pytest.raises(ClientError) as caught:
        call()

    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Code"] == "SignatureDoesNotMatch"
    assert error["Message"] == "Credential should be scoped to a valid region, not 'xx-west-9'. "


# -- the credential scope's service ------------------------------------------------------------


def test_a_request_signed_for_sts_is_no_ecr_call(server: RegistryServer) -> None:
    request = signed(
        server,
        service="sts",
        body=json.dumps({"repositoryName": "signed-for-sts"}).encode(),
        headers={"Content-Type": JSON, "X-Amz-Target": TARGET + "CreateRepository"},
    )

    response = send(server, request)

    assert response.status_code == 400
    assert response.json() == {
        "__type": "InvalidSignatureException",
        "message": "Credential should be scoped to correct service: 'ecr'. ",
    }
    assert "signed-for-sts" not in repository_names(server)


def test_a_request_signed_for_ecr_is_no_iam_call(server: RegistryServer) -> None:
    request = signed(
        server,
        service="ecr",
        body=b"Action=CreateUser&Version=2010-05-08&UserName=signed-for-ecr",
        headers={"Content-Type": FORM},
    )

    response = send(server, request)

    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    assert "Credential should be scoped to correct service: 'iam'. " in response.text
    with pytest.raises(ClientError):
        client(server, "iam", REGION).get_user(UserName="signed-for-ecr")


# -- X-Amz-Target is part of what is signed -----------------------------------------------------


def test_a_captured_call_with_its_signed_target_changed_is_refused(
    server: RegistryServer,
) -> None:
    captured = ecr_call(server, "DescribeRepositories", {"repositoryName": "changed-target"})
    assert send(server, captured).status_code == 200

    response = send(server, captured, X_Amz_Target=TARGET + "CreateRepository")

    assert response.status_code == 400
    assert response.json()["__type"] == "InvalidSignatureException"
    assert "changed-target" not in repository_names(server)


def test_a_call_whose_target_was_not_signed_is_refused(server: RegistryServer) -> None:
    # Signed without any target; the target is added afterwards, as a tamperer would.
    unsigned = signed(
        server,
        service="ecr",
        body=json.dumps({"repositoryName": "unsigned-target"}).encode(),
        headers={"Content-Type": JSON},
    )

    response = send(server, unsigned, X_Amz_Target=TARGET + "CreateRepository")

    assert response.status_code == 400
    assert response.json() == {
        "__type": "IncompleteSignatureException",
        "message": "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.",
    }
    assert "unsigned-target" not in repository_names(server)


# -- the Query protocol signs its Action in the body --------------------------------------------


def test_a_query_call_with_a_changed_action_is_refused(server: RegistryServer) -> None:
    captured = signed(
        server,
        service="iam",
        body=b"Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": FORM},
    )
    assert send(server, captured).status_code == 200
    iam = client(server, "iam", REGION)

    tampered_body = send(
        server, captured, body=b"Action=CreateUser&Version=2010-05-08&UserName=tampered-body"
    )
    # The body stays as signed; an Action in the query string would override nothing unsigned.
    tampered_query = send(server, captured, query="Action=CreateUser&UserName=tampered-query")

    for response in (tampered_body, tampered_query):
        assert response.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    for name in ("tampered-body", "tampered-query"):
        with pytest.raises(ClientError) as caught:
            iam.get_user(UserName=name)
        assert caught.value.response["Error"]["Code"] == "NoSuchEntity"
