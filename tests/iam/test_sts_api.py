"""STS through boto3: GetCallerIdentity, GetSessionToken and AssumeRole against a live server,
temporary credentials used with STS, IAM, ECR and `/v2/`, refusals for a wrong or missing
session token; and expiry on an in-thread server whose services read a clock the test moves.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from starlette.requests import Request

from cargohold.auth.secretbox import SecretBox
from cargohold.domain.errors import AccessDenied
from cargohold.domain.principal import Principal
from cargohold.http.aws_auth import SigV4Authenticator
from cargohold.http.awsfront import AwsFront
from cargohold.http.ecr import ecr_service
from cargohold.http.ecr_tokens import token_handlers
from cargohold.http.iam import IamServices, entity_handlers, iam_service
from cargohold.http.iam_policies import policy_handlers
from cargohold.http.sts import sts_handlers, sts_service
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.service.authz import Authorizer, RequestRecord
from cargohold.service.credentials import MASTER_KEY_FILE
from cargohold.service.iam import IamService
from cargohold.service.identity import Identities
from cargohold.service.identity_policies import IdentityPolicies
from cargohold.service.managed_policies import ManagedPolicyService
from cargohold.service.policies import ResourcePolicies
from cargohold.service.sts import StsService
from support.fixtures import LiveServers
from support.server import RegistryServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
EXECUTION = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def trust(*principals: Any) -> str:
    statements = [
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        for principal in principals
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def as_session(server: RegistryServer, service: str, credentials: dict[str, Any]) -> Any:
    return server.aws_client(
        service,
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials["SessionToken"],
    )


@pytest.fixture(scope="module")
def admin_arn(sts: Any) -> str:
    arn: str = sts.get_caller_identity()["Arn"]
    return arn


# -- GetCallerIdentity, GetSessionToken --------------------------------------------------------


def test_get_caller_identity(sts: Any, iam: Any) -> None:
    who = sts.get_caller_identity()
    admin = iam.get_user()["User"]
    assert who["Account"] == ACCOUNT
    assert who["Arn"] == admin["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"
    assert who["UserId"] == admin["UserId"]


def test_get_session_token(iam_server: RegistryServer, sts: Any, admin_arn: str) -> None:
    before = datetime.now(UTC)
    credentials = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert len(credentials["SecretAccessKey"]) == 40 and credentials["SessionToken"]
    lasts = (credentials["Expiration"] - before).total_seconds()
    assert 895 <= lasts <= 905
    default = sts.get_session_token()["Credentials"]
    assert 43190 <= (default["Expiration"] - before).total_seconds() <= 43210

    session = as_session(iam_server, "sts", credentials)
    assert session.get_caller_identity()["Arn"] == admin_arn
    assert error_of(session.get_session_token) == (
        "AccessDenied",
        403,
        "Cannot call GetSessionToken with session credentials",
    )
    ecr = as_session(iam_server, "ecr", credentials)
    assert "repositories" in ecr.describe_repositories()


def test_a_wrong_or_missing_session_token_is_refused(iam_server: RegistryServer, sts: Any) -> None:
    credentials = sts.get_session_token()["Credentials"]
    wrong = {**credentials, "SessionToken": credentials["SessionToken"][:-4] + "AAAA"}
    invalid = (
        "InvalidClientTokenId",
        403,
        "The security token included in the request is invalid.",
    )
    assert error_of(as_session(iam_server, "sts", wrong).get_caller_identity) == invalid
    missing = iam_server.sts_client(
        key=credentials["AccessKeyId"], secret=credentials["SecretAccessKey"]
    )
    assert error_of(missing.get_caller_identity) == invalid
    ecr = as_session(iam_server, "ecr", wrong)
    assert error_of(ecr.describe_repositories) == (
        "UnrecognizedClientException",
        400,
        "The security token included in the request is invalid.",
    )
    # A long-term key with a token is no credential either.
    creds = iam_server.admin_credentials()
    with_token = iam_server.sts_client(
        key=creds["AWS_ACCESS_KEY_ID"],
        secret=creds["AWS_SECRET_ACCESS_KEY"],
        token=credentials["SessionToken"],
    )
    assert error_of(with_token.get_caller_identity)[0] == "InvalidClientTokenId"


def test_a_presigned_get_caller_identity(iam_server: RegistryServer, sts: Any) -> None:
    """A presigned GetCallerIdentity URL (what EKS-style tokens carry) answers with no header."""
    url = sts.generate_presigned_url(
        "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
    )
    assert "Action=GetCallerIdentity" in url and "X-Amz-Signature=" in url
    answer = httpx.get(url)
    assert answer.status_code == 200
    assert f"<Arn>arn:aws:iam::{ACCOUNT}:user/admin</Arn>" in answer.text
    tampered = httpx.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))
    assert tampered.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in tampered.text


# -- AssumeRole --------------------------------------------------------------------------------


def test_assume_role(iam_server: RegistryServer, iam: Any, sts: Any, admin_arn: str) -> None:
    role = iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=trust({"AWS": admin_arn}))[
        "Role"
    ]
    before = datetime.now(UTC)
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="build-7")
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert 3590 <= (credentials["Expiration"] - before).total_seconds() <= 3610
    assert assumed["AssumedRoleUser"] == {
        "AssumedRoleId": f"{role['RoleId']}:build-7",
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/build-7",
    }
    assert "PackedPolicySize" not in assumed

    who = as_session(iam_server, "sts", credentials).get_caller_identity()
    assert who["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    assert who["UserId"] == f"{role['RoleId']}:build-7" and who["Account"] == ACCOUNT

    narrowed = sts.assume_role(
        RoleArn=role["Arn"],
        RoleSessionName="narrow",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"}],
            }
        ),
        PolicyArns=[{"arn": EXECUTION}],
    )
    assert 0 < narrowed["PackedPolicySize"] < 100


def test_assume_role_refusals(iam_server: RegistryServer, iam: Any, sts: Any) -> None:
    iam.create_user(UserName="someone-else")
    other = iam.get_user(UserName="someone-else")["User"]["Arn"]
    role = iam.create_role(RoleName="not-yours", AssumeRolePolicyDocument=trust({"AWS": other}))[
        "Role"
    ]
    admin = sts.get_caller_identity()["Arn"]
    assert error_of(lambda: sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")) == (
        "AccessDenied",
        403,
        f"User: {admin} is not authorized to perform: sts:AssumeRole on resource: {role['Arn']}",
    )
    ghost = f"arn:aws:iam::{ACCOUNT}:role/ghost-role"
    assert error_of(lambda: sts.assume_role(RoleArn=ghost, RoleSessionName="s1"))[:2] == (
        "AccessDenied",
        403,
    )
    mine = iam.create_role(RoleName="short", AssumeRolePolicyDocument=trust({"AWS": admin}))["Role"]
    assert error_of(
        lambda: sts.assume_role(RoleArn=mine["Arn"], RoleSessionName="s1", DurationSeconds=7200)
    ) == (
        "ValidationError",
        400,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )
    code, status, message = error_of(
        lambda: sts.assume_role(RoleArn=mine["Arn"], RoleSessionName="no spaces allowed")
    )
    assert (code, status) == ("ValidationError", 400)
    assert "'roleSessionName' failed to satisfy constraint" in message
    malformed = error_of(
        lambda: sts.assume_role(RoleArn=mine["Arn"], RoleSessionName="s1", Policy="{broken")
    )
    assert malformed[:2] == ("MalformedPolicyDocument", 400)


def test_an_ecs_execution_role_trusts_the_service_and_whom_it_names(
    iam_server: RegistryServer, iam: Any, sts: Any, admin_arn: str
) -> None:
    service_only = iam.create_role(
        RoleName="ecs-only", AssumeRolePolicyDocument=trust({"Service": "ecs-tasks.amazonaws.com"})
    )["Role"]
    assert (
        error_of(lambda: sts.assume_role(RoleArn=service_only["Arn"], RoleSessionName="s1"))[0]
        == "AccessDenied"
    )
    role = iam.create_role(
        RoleName="ecsTaskExecutionRole",
        AssumeRolePolicyDocument=trust({"Service": "ecs-tasks.amazonaws.com"}, {"AWS": admin_arn}),
    )["Role"]
    iam.attach_role_policy(RoleName="ecsTaskExecutionRole", PolicyArn=EXECUTION)
    credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="task-1")["Credentials"]
    session = as_session(iam_server, "ecr", credentials)
    data = session.get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == iam_server.url


def test_role_chaining(iam_server: RegistryServer, iam: Any, sts: Any, admin_arn: str) -> None:
    first = iam.create_role(
        RoleName="chain-1",
        AssumeRolePolicyDocument=trust({"AWS": admin_arn}),
        MaxSessionDuration=43200,
    )["Role"]
    second = iam.create_role(
        RoleName="chain-2",
        AssumeRolePolicyDocument=trust({"AWS": first["Arn"]}),
        MaxSessionDuration=43200,
    )["Role"]
    credentials = sts.assume_role(
        RoleArn=first["Arn"], RoleSessionName="one", DurationSeconds=43200
    )["Credentials"]
    session = as_session(iam_server, "sts", credentials)
    chained = session.assume_role(RoleArn=second["Arn"], RoleSessionName="two")
    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/chain-2/two"
    assert error_of(
        lambda: session.assume_role(
            RoleArn=second["Arn"], RoleSessionName="two", DurationSeconds=7200
        )
    ) == (
        "ValidationError",
        400,
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
        "role chaining.",
    )


def test_a_role_session_logs_in_to_v2(
    iam_server: RegistryServer, iam: Any, sts: Any, admin_arn: str
) -> None:
    """`aws ecr get-login-password` with assumed-role credentials gives a working /v2/ login."""
    role = iam.create_role(RoleName="puller", AssumeRolePolicyDocument=trust({"AWS": admin_arn}))[
        "Role"
    ]
    iam.attach_role_policy(
        RoleName="puller", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
    )
    assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="pull", DurationSeconds=1800)
    credentials = assumed["Credentials"]
    ecr = as_session(iam_server, "ecr", credentials)
    data = ecr.get_authorization_token()["authorizationData"][0]
    # The token ends with the session, not twelve hours later.
    assert abs((data["expiresAt"] - credentials["Expiration"]).total_seconds()) <= 1
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert username == "AWS"
    answer = httpx.get(f"{iam_server.url}/v2/", auth=(username, password))
    assert answer.status_code == 200
    # Deleting the role ends the session and its /v2/ token.
    iam.detach_role_policy(
        RoleName="puller", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
    )
    iam.delete_role(RoleName="puller")
    assert httpx.get(f"{iam_server.url}/v2/", auth=(username, password)).status_code == 401
    assert error_of(as_session(iam_server, "sts", credentials).get_caller_identity)[0] == (
        "InvalidClientTokenId"
    )


# -- expiry, on an in-thread server with a clock the test moves --------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class App:
    """The STS, IAM and ECR token fronts over real services that read `clock`."""

    def __init__(self, data: Path, clock: Clock, base_url: str) -> None:
        self.data = data
        self.clock = clock
        self.base_url = base_url
        self.store: MetadataStore | None = None
        self.admin: tuple[str, str] = ("", "")

    async def start(self) -> None:
        url = f"sqlite:///{self.data / 'metadata.db'}"
        database.upgrade(url)
        store = self.store = MetadataStore.from_url(url)
        async with store.write() as tx:
            await tx.registries.ensure_registry(ACCOUNT, REGION, self.clock())
        identities = Identities.from_data_dir(
            store, self.data, self.clock, account_id=ACCOUNT, region=REGION
        )
        admin = await identities.admin.ensure_administrator()
        self.admin = (admin.key.id, admin.secret)
        iam = IamService(store, self.clock, account_id=ACCOUNT)
        managed = ManagedPolicyService(store, iam, self.clock, account_id=ACCOUNT)
        await managed.ensure_aws_managed_policies()
        authorizer = Authorizer(
            self.clock,
            identities=IdentityPolicies(store, iam),
            resources=ResourcePolicies(store),
        )

        async def authorize(
            principal: Principal,
            action: str,
            resource: str,
            context: Any,
            *,
            record: RequestRecord | None = None,
        ) -> None:
            decision = await authorizer.authorize(
                principal, action, resource, context, record=record
            )
            if not decision.allowed:
                raise AccessDenied(decision.message)

        services = IamServices(identities.admin, iam, managed)
        box = SecretBox.from_key_file(self.data / MASTER_KEY_FILE)  # the identity's own key
        self.aws = AwsFront(
            [
                ecr_service(token_handlers(identities.authentication, public_url=self.base_url)),
                sts_service(
                    sts_handlers(StsService(store, box, iam, self.clock, authorizer=authorizer))
                ),
                iam_service(services, {**entity_handlers(services), **policy_handlers(services)}),
            ],
            SigV4Authenticator(identities.authentication, clock=self.clock, region=REGION),
            authorize,
            region=REGION,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.start()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if self.store is not None:
                        await self.store.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        response = await self.aws(Request(scope, receive))
        await response(scope, receive, send)


@dataclass
class Local:
    app: App
    clock: Clock

    def client(self, service: str, **credentials: str) -> Any:
        key, secret = self.app.admin
        return boto3.client(
            service,
            endpoint_url=self.app.base_url,
            region_name=REGION,
            aws_access_key_id=credentials.get("AccessKeyId", key),
            aws_secret_access_key=credentials.get("SecretAccessKey", secret),
            aws_session_token=credentials.get("SessionToken"),
            config=BotoConfig(retries={"max_attempts": 1}),
        )


@pytest.fixture(scope="module")
def local(live_servers: LiveServers) -> Local:
    clock = Clock()
    served = live_servers.in_thread("sts-api", lambda data, url: App(data, clock, url))
    return Local(served.app, clock)


EXPIRED = ("ExpiredToken", 400, "The security token included in the request is expired")


def test_session_tokens_expire(local: Local) -> None:
    credentials = local.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    session = local.client("sts", **credentials)
    ecr = local.client("ecr", **credentials)
    try:
        local.clock.offset = 890  # still inside the session, and inside SigV4's clock skew
        assert session.get_caller_identity()["Account"] == ACCOUNT
        local.clock.offset = 901
        assert error_of(session.get_caller_identity) == EXPIRED
        assert error_of(ecr.get_authorization_token) == (
            "ExpiredTokenException",
            400,
            "The security token included in the request is expired",
        )
    finally:
        local.clock.offset = 0


def test_role_sessions_and_their_v2_tokens_expire(local: Local) -> None:
    admin = local.client("sts").get_caller_identity()["Arn"]
    iam = local.client("iam")
    role = iam.create_role(RoleName="expiring", AssumeRolePolicyDocument=trust({"AWS": admin}))[
        "Role"
    ]
    iam.put_role_policy(
        RoleName="expiring",
        PolicyName="list",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["iam:ListRoles", "ecr:GetAuthorizationToken"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    credentials = local.client("sts").assume_role(
        RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=900
    )["Credentials"]
    session = local.client("iam", **credentials)
    assert "expiring" in [r["RoleName"] for r in session.list_roles()["Roles"]]
    try:
        local.clock.offset = 901
        assert error_of(session.list_roles) == EXPIRED
        assert error_of(local.client("sts", **credentials).get_caller_identity) == EXPIRED
    finally:
        local.clock.offset = 0
