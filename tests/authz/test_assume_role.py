"""sts:AssumeRole through the one authorization path: the role's trust policy is the resource
policy, its conditions see the keys STS defines (sts:ExternalId, sts:RoleSessionName), and a
role of account A is assumed from account B when A's trust policy and B's identity policy
both allow it; the session then pulls from A's registry."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from support.fixtures import LiveServers
from support.server import RegistryServer
from support.v2 import TinyImage, push_image

A = "123456789012"
B = "210987654321"


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("assume-role")


def cli(server: RegistryServer, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "cargohold", "admin", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


@pytest.fixture(scope="module")
def b_admin(server: RegistryServer) -> dict[str, str]:
    cli(server, "account", "create", B)
    exports = cli(server, "credentials", "--account", B)
    found = dict(
        line.removeprefix("export ").split("=", 1)
        for line in exports.splitlines()
        if line.startswith("export ")
    )
    return {"key": found["AWS_ACCESS_KEY_ID"], "secret": found["AWS_SECRET_ACCESS_KEY"]}


def trust(principal: str, **condition: Any) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def denied(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    return str(error["Message"])


def test_a_trust_policy_asks_for_an_external_id(server: RegistryServer) -> None:
    iam, sts = server.iam_client(), server.sts_client()
    admin = f"arn:aws:iam::{A}:user/admin"
    iam.create_role(
        RoleName="partner",
        AssumeRolePolicyDocument=trust(
            admin,
            StringEquals={"sts:ExternalId": "s3cret"},
            StringLike={"sts:RoleSessionName": "ci-*"},
        ),
    )
    role = f"arn:aws:iam::{A}:role/partner"
    message = denied(lambda: sts.assume_role(RoleArn=role, RoleSessionName="ci-1"))
    assert (
        message == f"User: {admin} is not authorized to perform: sts:AssumeRole on resource: {role}"
    )
    denied(lambda: sts.assume_role(RoleArn=role, RoleSessionName="ci-1", ExternalId="wrong"))
    denied(lambda: sts.assume_role(RoleArn=role, RoleSessionName="dev-1", ExternalId="s3cret"))
    assumed = sts.assume_role(RoleArn=role, RoleSessionName="ci-1", ExternalId="s3cret")
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{A}:assumed-role/partner/ci-1"


def test_a_role_is_assumed_across_accounts_when_both_sides_allow(
    server: RegistryServer, b_admin: dict[str, str]
) -> None:
    iam = server.iam_client()
    ecr = server.ecr_client()
    ecr.create_repository(repositoryName="shared/app")
    image = TinyImage.make("shared")
    with httpx.Client(base_url=server.url, auth=server.auth()) as client:
        assert push_image(client, "shared/app", "v1", image).status_code == 201
    iam.create_role(
        RoleName="cross-puller", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{B}:root")
    )
    iam.attach_role_policy(
        RoleName="cross-puller",
        PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    )
    role = f"arn:aws:iam::{A}:role/cross-puller"

    b_iam = server.iam_client(key=b_admin["key"], secret=b_admin["secret"])
    b_iam.create_user(UserName="deployer")
    key = b_iam.create_access_key(UserName="deployer")["AccessKey"]
    deployer = server.sts_client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    # A's trust policy names B, but B has not allowed its user to assume anything.
    message = denied(lambda: deployer.assume_role(RoleArn=role, RoleSessionName="deploy"))
    assert message.startswith(f"User: arn:aws:iam::{B}:user/deployer is not authorized")
    allow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}],
    }
    b_iam.put_user_policy(
        UserName="deployer", PolicyName="assume", PolicyDocument=json.dumps(allow)
    )
    credentials = deployer.assume_role(RoleArn=role, RoleSessionName="deploy")["Credentials"]

    # The session is A's: it pulls from A's registry with the role's ReadOnly policy.
    session = server.ecr_client(
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
    )
    images = session.list_images(repositoryName="shared/app")["imageIds"]
    assert images == [{"imageDigest": image.digest, "imageTag": "v1"}]
    with pytest.raises(ClientError) as caught:
        session.delete_repository(repositoryName="shared/app", force=True)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"

    # A role that trusts nobody of B stays closed to B, whatever B allows.
    iam.create_role(RoleName="closed", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{A}:root"))
    closed = f"arn:aws:iam::{A}:role/closed"
    allow["Statement"][0]["Resource"] = "*"
    b_iam.put_user_policy(
        UserName="deployer", PolicyName="assume", PolicyDocument=json.dumps(allow)
    )
    denied(lambda: deployer.assume_role(RoleArn=closed, RoleSessionName="deploy"))


def test_each_account_has_its_registry_host(
    server: RegistryServer, b_admin: dict[str, str]
) -> None:
    b_ecr = server.ecr_client(key=b_admin["key"], secret=b_admin["secret"])
    created = b_ecr.create_repository(repositoryName="b-own")["repository"]
    assert created["registryId"] == B
    assert created["repositoryUri"] == f"{B}.localhost:{server.port}/b-own"
    own = server.ecr_client().create_repository(repositoryName="a-own")["repository"]
    assert own["repositoryUri"] == f"127.0.0.1:{server.port}/a-own"
    data = b_ecr.get_authorization_token(registryIds=[A, B])["authorizationData"]
    assert [d["proxyEndpoint"] for d in data] == [
        f"http://127.0.0.1:{server.port}",
        f"http://{B}.localhost:{server.port}",
    ]
    # B's token, on the plain host, is B's registry; on A's host, A's (closed to B).
    token = data[0]["authorizationToken"]
    password = base64.b64decode(token).decode().removeprefix("AWS:")
    with httpx.Client(base_url=server.url, auth=("AWS", password)) as client:
        assert client.get("/v2/_catalog").json() == {"repositories": ["b-own"]}
        a_host = {"Host": f"{A}.localhost:{server.port}"}
        assert client.get("/v2/_catalog", headers=a_host).status_code == 403
