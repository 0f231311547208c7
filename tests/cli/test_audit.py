"""`cargohold audit`: the decisions a live server made, read back from its database."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from cargohold.audit_cli import parse_when
from support.fixtures import LiveServers
from support.server import RegistryServer
from support.waiting import wait_until

ACCOUNT = "123456789012"
ADMIN = f"arn:aws:iam::{ACCOUNT}:user/admin"
NOBODY = f"arn:aws:iam::{ACCOUNT}:user/audit-nobody"


@pytest.fixture(scope="module")
def server(live_servers: LiveServers) -> RegistryServer:
    return live_servers.start("audit-server")


def audit(server: RegistryServer, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "audit", "--data-dir", str(server.data_dir), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def records(server: RegistryServer, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit(server, "--json", *args).splitlines()]


def settled(server: RegistryServer, *args: str, until: Callable[[dict[str, Any]], bool]) -> None:
    """Wait for the server to write its audit records (it does within half a second) until one
    of those `args` select satisfies `until`."""
    wait_until(
        lambda: any(until(record) for record in records(server, *args)),
        interval=0.2,
        message="the audit record never appeared",
    )


def test_a_denied_and_an_allowed_call_are_in_the_log(server: RegistryServer) -> None:
    ecr = server.ecr_client()
    ecr.create_repository(repositoryName="audited", tags=[{"Key": "team", "Value": "red"}])
    iam = server.iam_client()
    iam.create_user(UserName="audit-nobody")
    key = iam.create_access_key(UserName="audit-nobody")["AccessKey"]
    nobody = server.ecr_client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    with pytest.raises(ClientError):
        nobody.describe_images(repositoryName="audited")
    settled(server, "--principal", NOBODY, until=lambda r: r["eventName"] == "DescribeImages")

    allowed = [
        r for r in records(server, "--principal", ADMIN) if r["eventName"] == "CreateRepository"
    ]
    assert len(allowed) == 1
    event = allowed[0]
    assert event["eventSource"] == "ecr.amazonaws.com" and event["awsRegion"] == "us-east-1"
    assert event["userIdentity"]["arn"] == ADMIN
    assert event["userIdentity"]["type"] == "IAMUser"
    assert event["userIdentity"]["accessKeyId"].startswith("AKIA")
    assert event["sourceIPAddress"] == "127.0.0.1"
    assert event["userAgent"].startswith("Boto3/")
    assert event["requestParameters"] == {
        "repositoryName": "audited",
        "tags": [{"Key": "team", "Value": "red"}],
    }
    assert "errorCode" not in event and event["readOnly"] is False
    assert event["resources"] == [
        {"ARN": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/audited", "accountId": ACCOUNT}
    ]
    assert event["eventTime"].endswith("Z") and event["eventID"] and event["requestID"]

    (denied,) = records(server, "--principal", NOBODY, "--denied")
    assert denied["eventName"] == "DescribeImages" and denied["readOnly"] is True
    assert denied["userIdentity"]["arn"] == NOBODY
    assert denied["errorCode"] == "AccessDeniedException"
    assert denied["errorMessage"] == (
        f"User: {NOBODY} is not authorized to perform: ecr:DescribeImages on resource: "
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/audited because no identity-based policy "
        "allows the ecr:DescribeImages action"
    )
    assert denied["requestParameters"] == {"repositoryName": "audited"}
    # The IAM calls the administrator made are decisions too.
    by_admin = records(server, "--principal", ADMIN)
    assert {"CreateUser", "CreateAccessKey", "CreateRepository"} <= {
        r["eventName"] for r in by_admin
    }
    (create_user,) = [r for r in by_admin if r["eventName"] == "CreateUser"]
    assert create_user["eventSource"] == "iam.amazonaws.com"
    assert create_user["requestParameters"] == {"UserName": "audit-nobody"}

    table = audit(server, "--principal", NOBODY)
    header, row = table.splitlines()
    assert header.split() == ["TIME", "EVENT", "PRINCIPAL", "SOURCE", "IP", "OUTCOME", "RESOURCE"]
    assert "ecr:DescribeImages" in row and "AccessDeniedException" in row and NOBODY in row


def test_v2_decisions_are_in_the_log(server: RegistryServer) -> None:
    server.create_repository("audited-v2")
    with httpx.Client(base_url=server.url, auth=server.auth()) as client:
        assert client.get("/v2/audited-v2/tags/list").status_code == 200
    settled(
        server, until=lambda r: (r["requestParameters"] or {}).get("repositoryName") == "audited-v2"
    )
    (event,) = [
        r
        for r in records(server, "--since", "10m")
        if r["eventName"] == "ListImages"
        and r["requestParameters"].get("repositoryName") == "audited-v2"
    ]
    assert event["eventSource"] == "ecr.amazonaws.com"
    assert event["requestParameters"] == {"registryId": ACCOUNT, "repositoryName": "audited-v2"}
    assert event["userAgent"].startswith("python-httpx/")
    # Nothing is older than the start of time, nor newer than the future.
    assert records(server, "--until", "1970-01-02") == []
    assert records(server, "--since", "2999-01-01T00:00:00Z") == []
    assert len(records(server, "--limit", "2")) == 2


def test_failed_authentications_are_in_the_log(server: RegistryServer) -> None:
    """A wrong secret, an unknown key, an expired session token and a bad /v2/ password are
    each recorded, as CloudTrail records a rejected call; an anonymous /v2/ probe is not."""
    admin_key = server.admin_credentials()["AWS_ACCESS_KEY_ID"]
    wrong_secret = server.ecr_client(key=admin_key, secret="x" * 40)
    with pytest.raises(ClientError) as bad_secret:
        wrong_secret.list_images(repositoryName="anything")
    unknown = server.iam_client(key="AKIAUNKNOWNUNKNOWN00", secret="y" * 40)
    with pytest.raises(ClientError):
        unknown.list_users()
    sts = server.sts_client()
    session = sts.get_session_token(DurationSeconds=900)["Credentials"]
    forged = server.ecr_client(
        key=session["AccessKeyId"], secret=session["SecretAccessKey"], token="forged" * 20
    )
    with pytest.raises(ClientError):
        forged.describe_repositories()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/v2/").status_code == 401  # no credentials: nothing to record
        assert client.get("/v2/", auth=("AWS", "not-a-token")).status_code == 401

    def failures() -> list[dict[str, Any]]:
        return [r for r in records(server, "--denied") if r["userIdentity"]["type"] == "Unknown"]

    wait_until(lambda: len(failures()) >= 4, interval=0.2, message=lambda: str(failures()))
    found = failures()
    by_name = {r["eventName"]: r for r in found}
    assert {"ListImages", "ListUsers", "DescribeRepositories", "Authenticate"} <= set(by_name)

    secret = by_name["ListImages"]
    assert secret["userIdentity"] == {"type": "Unknown", "accessKeyId": admin_key}
    assert secret["eventSource"] == "ecr.amazonaws.com"
    assert secret["errorCode"] == bad_secret.value.response["Error"]["Code"]
    assert secret["errorMessage"] == bad_secret.value.response["Error"]["Message"]
    assert secret["sourceIPAddress"] == "127.0.0.1" and secret["userAgent"].startswith("Boto3/")
    assert "x" * 40 not in json.dumps(found)  # the secret tried is never kept

    assert by_name["ListUsers"]["userIdentity"]["accessKeyId"] == "AKIAUNKNOWNUNKNOWN00"
    assert by_name["ListUsers"]["eventSource"] == "iam.amazonaws.com"
    assert (
        by_name["DescribeRepositories"]["userIdentity"]["accessKeyId"] == (session["AccessKeyId"])
    )
    v2 = by_name["Authenticate"]
    assert v2["errorCode"] in ("UNAUTHORIZED", "DENIED") and v2["userIdentity"] == {
        "type": "Unknown"
    }
    assert "not-a-token" not in json.dumps(v2)
    assert len([r for r in found if r["eventName"] == "Authenticate"]) == 1

    table = audit(server, "--denied")
    assert f"unknown (key {admin_key})" in table


def test_limit_shows_the_newest_events(server: RegistryServer) -> None:
    ecr = server.ecr_client()
    for name in ("limit-first", "limit-second", "limit-third"):
        ecr.create_repository(repositoryName=name)
    settled(
        server,
        until=lambda r: (r["requestParameters"] or {}).get("repositoryName") == "limit-third",
    )
    everything = records(server)
    newest = records(server, "--limit", "2")
    assert newest == everything[-2:]
    assert newest[-1]["requestParameters"]["repositoryName"] == "limit-third"
    assert records(server, "--limit", "1") == everything[-1:]


def test_account_selects_the_events_of_one_account(server: RegistryServer) -> None:
    server.ecr_client().describe_repositories()
    mine = records(server, "--account", ACCOUNT)
    assert mine and all(r["userIdentity"].get("accountId") == ACCOUNT for r in mine)
    assert records(server, "--account", "210987654321") == []
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "audit", "--account", "12345"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2 and "twelve digits" in result.stderr


def test_times() -> None:
    assert parse_when("2026-11-26T17:00:00Z", now=0) == 1795712400.0
    assert parse_when("2026-11-26", now=0) == 1795651200.0
    assert parse_when("15m", now=1000.0) == 100.0
    assert parse_when("2h", now=10_000.0) == 2800.0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_when("yesterday", now=0)
