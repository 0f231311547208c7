"""SigV4 on the live ECR API and the lifetime of `/v2/` tokens, with real boto3 requests."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from support.server import RegistryServer
from support.waiting import wait_until

TARGET = "AmazonEC2ContainerRegistry_V20150921."


def signed(
    server: RegistryServer,
    operation: str,
    body: dict[str, Any],
    *,
    secret: str | None = None,
    key: str | None = None,
    when: datetime | None = None,
) -> AWSRequest:
    creds = server.admin_credentials()
    request = AWSRequest(
        method="POST",
        url=server.url + "/",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": TARGET + operation,
        },
    )
    credentials = Credentials(
        key or creds["AWS_ACCESS_KEY_ID"], secret or creds["AWS_SECRET_ACCESS_KEY"]
    )
    signer = SigV4Auth(credentials, "ecr", creds["AWS_DEFAULT_REGION"])
    moment = (when or datetime.now(UTC)).replace(tzinfo=None)
    # Freeze the clock botocore's signer reads, so a request can be signed at any moment.
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(request)
    return request


def send(server: RegistryServer, request: AWSRequest, body: bytes | None = None) -> httpx.Response:
    return httpx.post(
        server.url + "/",
        content=request.body if body is None else body,
        headers=dict(request.headers.items()),
        timeout=30,
    )


def error_type(response: httpx.Response) -> str:
    return str(response.json()["__type"])


def test_a_signed_request_is_answered(ecr_server: RegistryServer) -> None:
    response = send(ecr_server, signed(ecr_server, "DescribeRegistry", {}))
    assert response.status_code == 200
    assert response.json()["registryId"] == "123456789012"
    assert response.headers["x-amzn-RequestId"]


def test_no_credentials(ecr_server: RegistryServer) -> None:
    response = httpx.post(
        ecr_server.url + "/",
        content=b"{}",
        headers={"X-Amz-Target": TARGET + "DescribeRepositories"},
    )
    assert response.status_code == 403
    assert error_type(response) == "MissingAuthenticationTokenException"


def test_tampered_body(ecr_server: RegistryServer) -> None:
    request = signed(ecr_server, "DescribeRepositories", {})
    response = send(ecr_server, request, body=b'{"maxResults": 5}')
    assert error_type(response) == "InvalidSignatureException"


def test_wrong_secret(ecr_server: RegistryServer) -> None:
    response = send(ecr_server, signed(ecr_server, "DescribeRepositories", {}, secret="x" * 40))
    assert error_type(response) == "InvalidSignatureException"
    assert "does not match" in response.json()["message"]


def test_unknown_key(ecr_server: RegistryServer) -> None:
    request = signed(ecr_server, "DescribeRepositories", {}, key="AKIAUNKNOWNUNKNOWN00")
    response = send(ecr_server, request)
    assert error_type(response) == "UnrecognizedClientException"


def test_old_date(ecr_server: RegistryServer) -> None:
    old = datetime.now(UTC) - timedelta(minutes=20)
    response = send(ecr_server, signed(ecr_server, "DescribeRepositories", {}, when=old))
    assert error_type(response) == "InvalidSignatureException"
    assert response.json()["message"].startswith("Signature expired")


def test_an_operation_not_served_yet_says_so(ecr: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ecr.describe_pull_through_cache_rules()
    assert caught.value.response["Error"]["Code"] == "UnsupportedOperationException"


def test_unknown_target(ecr_server: RegistryServer) -> None:
    response = send(ecr_server, signed(ecr_server, "NoSuchOperation", {}))
    assert response.status_code == 400
    assert error_type(response) == "UnknownOperationException"


def expect_settles_to(status: int, url: str, auth: httpx.BasicAuth) -> None:
    """`/v2/` answers `status` within the read cache's lifetime: a change made by another
    process (here the admin CLI) reaches the server within 2 seconds."""
    wait_until(
        lambda: httpx.get(url + "/v2/", auth=auth).status_code == status,
        timeout=3.0,
        interval=0.1,
        message=f"/v2/ never answered {status}",
    )


def test_a_token_stops_working_when_its_key_is_deactivated(ecr_server: RegistryServer) -> None:
    cli = [sys.executable, "-m", "cargohold", "admin", "--data-dir", str(ecr_server.data_dir)]
    env = ecr_server._env()
    created = subprocess.run(
        [*cli, "access-key", "create", "admin"], check=True, capture_output=True, text=True, env=env
    ).stdout
    fields = dict(line.split(": ", 1) for line in created.splitlines() if ": " in line)
    key_id = fields["access key id"].strip()
    secret = fields["secret access key"].split()[0]
    client = ecr_server.ecr_client(key=key_id, secret=secret)
    token = client.get_authorization_token()["authorizationData"][0]
    password = httpx.BasicAuth(
        "AWS", base64.b64decode(token["authorizationToken"]).decode().removeprefix("AWS:")
    )
    expect_settles_to(200, ecr_server.url, password)
    subprocess.run(
        [*cli, "access-key", "deactivate", key_id], check=True, env=env, capture_output=True
    )
    expect_settles_to(401, ecr_server.url, password)
    with pytest.raises(ClientError) as caught:
        client.describe_repositories()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    subprocess.run(
        [*cli, "access-key", "activate", key_id], check=True, env=env, capture_output=True
    )
    expect_settles_to(200, ecr_server.url, password)
    subprocess.run([*cli, "access-key", "delete", key_id], check=True, env=env, capture_output=True)
    expect_settles_to(401, ecr_server.url, password)
