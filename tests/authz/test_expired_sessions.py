"""Expired session credentials, for every ECR operation and every `/v2/` route: the whole
application in a thread, on a clock the test moves past a role session's end.

While the session lasts its calls are decided by its role's policies; once it has ended, every
ECR call is refused before any decision (`ExpiredTokenException`), and every `/v2/` request
with the session's registry token asks for credentials again (401).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from cargohold import admin
from cargohold.app import Application
from cargohold.audit_cli import read_events
from cargohold.config import load
from support.ecr_operations import OPERATIONS, ROUTES, Operation
from support.fixtures import LiveServers
from support.v2 import TinyImage, push_image
from support.waiting import wait_until

REPO = "sessions/app"
REGION = "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Live:
    url: str
    clock: Clock
    admin: dict[str, str]
    data_dir: Path

    def client(self, service: str, **credentials: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=credentials.get("AccessKeyId", self.admin["key"]),
            aws_secret_access_key=credentials.get("SecretAccessKey", self.admin["secret"]),
            aws_session_token=credentials.get("SessionToken"),
            config=BotoConfig(retries={"max_attempts": 1}),
        )


@pytest.fixture(scope="module")
def live(live_servers: LiveServers) -> Live:
    clock = Clock()
    found: dict[str, str] = {}
    data_dirs: list[Path] = []

    def application(root: Path, url: str) -> Application:
        port = httpx.URL(url).port
        data_dirs.append(root / "data")
        overrides = {"data_dir": str(root / "data"), "port": port, "public_url": url}
        config = load(overrides=overrides, environ={})
        credentials = admin.administrator_credentials(config)
        found.update(key=credentials.access_key_id, secret=credentials.secret_access_key)
        return Application(config, clock=clock)

    url = live_servers.in_thread("sessions", application).url
    return Live(url, clock, found, data_dirs[0])


@dataclass
class Session:
    credentials: dict[str, Any]
    password: str
    image: TinyImage


@pytest.fixture(scope="module")
def session(live: Live) -> Session:
    """A role session allowed everything in ECR, for 15 minutes, with a `/v2/` token."""
    live.client("ecr").create_repository(repositoryName=REPO)
    image = TinyImage.make("sessions")
    iam = live.client("iam")
    me = live.client("sts").get_caller_identity()["Arn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName="short-lived", AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(
        RoleName="short-lived",
        PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess",
    )
    credentials = live.client("sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/short-lived",
        RoleSessionName="matrix",
        DurationSeconds=900,
    )["Credentials"]
    token = live.client("ecr", **credentials).get_authorization_token()
    password = (
        base64.b64decode(token["authorizationData"][0]["authorizationToken"])
        .decode()
        .removeprefix("AWS:")
    )
    with httpx.Client(base_url=live.url, auth=("AWS", password)) as client:
        assert push_image(client, REPO, "v1", image).status_code == 201
    return Session(credentials, password, image)


@pytest.fixture
def expired(live: Live, session: Session) -> Iterator[None]:
    live.clock.offset = 901
    try:
        yield
    finally:
        live.clock.offset = 0


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
def test_ecr_refuses_expired_session_credentials(
    live: Live, session: Session, expired: None, operation: Operation
) -> None:
    params = operation.params(REPO, session.image)
    with pytest.raises(ClientError) as caught:
        live.client("ecr", **session.credentials)._make_api_call(operation.name, params)
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_v2_refuses_an_expired_sessions_token(live: Live, session: Session, route: Any) -> None:
    def send() -> httpx.Response:
        with httpx.Client(base_url=live.url, auth=("AWS", session.password)) as client:
            return client.request(
                route.method,
                route.path(REPO, session.image),
                content=route.body(session.image) if route.body else None,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )

    assert send().status_code not in (401, 403)  # while the session lasts
    live.clock.offset = 901
    try:
        answer = send()
    finally:
        live.clock.offset = 0
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic realm=")


def test_expired_credentials_are_in_the_audit_log(
    live: Live, session: Session, expired: None
) -> None:
    with pytest.raises(ClientError):
        live.client("ecr", **session.credentials).describe_repositories()
    with httpx.Client(base_url=live.url, auth=("AWS", session.password)) as client:
        assert client.get("/v2/").status_code == 401
    config = load(overrides={"data_dir": str(live.data_dir)}, environ={})

    def failures() -> list[dict[str, Any]]:
        return [
            event.document
            for event in read_events(config, denied=True)
            if event.document["userIdentity"]["type"] == "Unknown"
        ]

    def recorded() -> bool:
        found = failures()
        return any(d["errorCode"] == "ExpiredTokenException" for d in found) and any(
            d["eventName"] == "Authenticate" for d in found
        )

    wait_until(recorded, timeout=10, message=lambda: str(failures()))
    calls = [d for d in failures() if d["eventName"] == "DescribeRepositories"]
    assert calls and all(d["errorCode"] == "ExpiredTokenException" for d in calls)
    assert {d["userIdentity"]["accessKeyId"] for d in calls} == {session.credentials["AccessKeyId"]}
