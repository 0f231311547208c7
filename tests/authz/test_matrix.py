"""Who may do what, for every ECR operation and every `/v2/` route, on a live server of two
accounts: allowed by an identity policy; implicitly denied; explicitly denied despite an allow;
allowed by the repository policy alone; across accounts with one side and with both allowing;
and a condition key (aws:SourceIp, aws:ResourceTag, aws:PrincipalArn) flipping the decision.

One table of scenarios (a caller, a repository of account A, and the outcome expected for each
kind of resource) meets one table of operations (how to call it and what it acts on). An
allowed call may still fail for its own reasons (a missing upload, an image that exists): it
only must not be denied. A denial must carry AWS's words, naming the action and the resource.
Calls an allowed caller makes change nothing a later case depends on (they name things that
do not exist, or repeat what is there), and a repository policy one deletes is put back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError

from cargohold import admin
from cargohold.app import Node
from cargohold.config import load
from cargohold.http.oci_routes import ACTIONS
from cargohold.service.identity import Identities
from support.ecr_operations import (
    ACCOUNT,
    OPERATIONS,
    OWN_REPOSITORY,
    REGION,
    REGISTRY,
    REPOSITORY,
    ROUTES,
    A,
    repository_arn,
)
from support.fixtures import LiveServers
from support.server import RegistryServer
from support.v2 import TinyImage, push_image

B = "210987654321"
REPOSITORIES = ("matrix/plain", "matrix/blue", "matrix/granted", "matrix/guarded")

# -- expectations --------------------------------------------------------------------------------

ALLOWED = "allowed"
NO_IDENTITY = "because no identity-based policy allows the {action} action"
NO_RESOURCE = "because no resource-based policy allows the {action} action"
IDENTITY_DENY = "with an explicit deny in an identity-based policy"
RESOURCE_DENY = "with an explicit deny in a resource-based policy"

#: OWN_REPOSITORY operations are tried by account A's callers only.


@dataclass(frozen=True)
class Scenario:
    name: str
    user: str
    repository: str
    #: The outcome by kind of resource; a kind left out does not apply.
    expect: dict[str, str]


SCENARIOS = [
    Scenario(
        "identity-allow",
        "allow",
        "matrix/plain",
        {REPOSITORY: ALLOWED, REGISTRY: ALLOWED, ACCOUNT: ALLOWED},
    ),
    Scenario(
        "implicit-deny",
        "none",
        "matrix/plain",
        {REPOSITORY: NO_IDENTITY, REGISTRY: NO_IDENTITY, ACCOUNT: NO_IDENTITY},
    ),
    Scenario(
        "explicit-deny",
        "denied",
        "matrix/plain",
        {REPOSITORY: IDENTITY_DENY, REGISTRY: IDENTITY_DENY, ACCOUNT: IDENTITY_DENY},
    ),
    Scenario(
        "repository-policy-only",
        "granted",
        "matrix/granted",
        {REPOSITORY: ALLOWED, REGISTRY: NO_IDENTITY, ACCOUNT: NO_IDENTITY},
    ),
    Scenario(
        "cross-account-identity-side-only",
        "b-allow",
        "matrix/plain",
        {REPOSITORY: NO_RESOURCE, REGISTRY: NO_RESOURCE, ACCOUNT: ALLOWED},
    ),
    Scenario(
        "cross-account-resource-side-only",
        "b-granted",
        "matrix/granted",
        {REPOSITORY: NO_IDENTITY, REGISTRY: NO_RESOURCE, ACCOUNT: NO_IDENTITY},
    ),
    Scenario(
        "cross-account-both-sides",
        "b-both",
        "matrix/granted",
        {REPOSITORY: ALLOWED, REGISTRY: NO_RESOURCE, ACCOUNT: ALLOWED},
    ),
    Scenario(
        "source-ip-inside",
        "ip-loopback",
        "matrix/plain",
        {REPOSITORY: ALLOWED, REGISTRY: ALLOWED, ACCOUNT: ALLOWED},
    ),
    Scenario(
        "source-ip-outside",
        "ip-private",
        "matrix/plain",
        {REPOSITORY: NO_IDENTITY, REGISTRY: NO_IDENTITY, ACCOUNT: NO_IDENTITY},
    ),
    Scenario(
        "resource-tag-matches",
        "red",
        "matrix/plain",
        {REPOSITORY: ALLOWED, REGISTRY: NO_IDENTITY, ACCOUNT: NO_IDENTITY},
    ),
    Scenario("resource-tag-differs", "red", "matrix/blue", {REPOSITORY: NO_IDENTITY}),
    Scenario("principal-arn-listed", "allow", "matrix/guarded", {REPOSITORY: ALLOWED}),
    Scenario("principal-arn-unlisted", "allow-2", "matrix/guarded", {REPOSITORY: RESOURCE_DENY}),
]


# -- the accounts, their users and A's repositories ----------------------------------------------


def statement(effect: str = "Allow", action: str = "ecr:*", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": "*", **extra}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


#: user name → (account, identity policy or None)
USERS: dict[str, tuple[str, str | None]] = {
    "allow": (A, document(statement())),
    "allow-2": (A, document(statement())),
    "none": (A, None),
    "denied": (A, document(statement(), statement("Deny"))),
    "granted": (A, None),
    "ip-loopback": (
        A,
        document(statement(Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})),
    ),
    "ip-private": (
        A,
        document(statement(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
    ),
    "red": (A, document(statement(Condition={"StringEquals": {"aws:ResourceTag/team": "red"}}))),
    "b-allow": (B, document(statement())),
    "b-granted": (B, None),
    "b-both": (B, document(statement())),
}


def user_arn(user: str) -> str:
    return f"arn:aws:iam::{USERS[user][0]}:user/m-{user}"


def repository_policies() -> dict[str, str]:
    granted = [user_arn(u) for u in ("granted", "b-granted", "b-both")]
    listed = [f"arn:aws:iam::{A}:user/admin", user_arn("allow")]
    return {
        "matrix/granted": document(
            {"Effect": "Allow", "Principal": {"AWS": granted}, "Action": "ecr:*"}
        ),
        "matrix/guarded": document(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "ecr:*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": listed}},
            }
        ),
    }


@dataclass
class Caller:
    arn: str
    account: str
    ecr: Any
    http: httpx.Client


@dataclass
class World:
    server: RegistryServer
    admin_ecr: Any
    callers: dict[str, Caller]
    images: dict[str, TinyImage]


def _cli(server: RegistryServer, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cargohold", "admin", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def _exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            found[key] = value.strip("'\"")
    return found


def v2_password(server: RegistryServer, access_key_id: str) -> str:
    """A `/v2/` password for the key's user, issued on the server's database: the matrix is
    about `/v2/` routes, not about who may call GetAuthorizationToken."""

    async def issue(identities: Identities) -> str:
        principal = await identities.authentication.principal_for_key(access_key_id)
        assert principal is not None
        return identities.authentication.issue_password(principal)[0]

    return admin.run(load(overrides={"data_dir": str(server.data_dir)}, environ={}), issue)


@pytest.fixture(scope="module")
def world(live_servers: LiveServers) -> Iterator[World]:
    server = live_servers.start("matrix")
    clients: list[httpx.Client] = []
    try:
        _cli(server, "account", "create", B)
        b_admin = _exports(_cli(server, "credentials", "--account", B))
        iam = {
            A: server.iam_client(),
            B: server.iam_client(
                key=b_admin["AWS_ACCESS_KEY_ID"], secret=b_admin["AWS_SECRET_ACCESS_KEY"]
            ),
        }
        admin_ecr = server.ecr_client()
        images = {}
        with httpx.Client(base_url=server.url, auth=server.auth()) as client:
            for name in REPOSITORIES:
                tags = [{"Key": "team", "Value": "blue" if name == "matrix/blue" else "red"}]
                admin_ecr.create_repository(repositoryName=name, tags=tags)
                images[name] = TinyImage.make(name)
                assert push_image(client, name, "v1", images[name]).status_code == 201
        admin_ecr.create_repository_creation_template(
            prefix="matrix-template", appliedFor=["REPLICATION"]
        )
        callers = {}
        for user, (account, policy) in USERS.items():
            iam[account].create_user(UserName=f"m-{user}")
            if policy is not None:
                iam[account].put_user_policy(
                    UserName=f"m-{user}", PolicyName="matrix", PolicyDocument=policy
                )
            key = iam[account].create_access_key(UserName=f"m-{user}")["AccessKey"]
            http = httpx.Client(
                base_url=server.url,
                auth=("AWS", v2_password(server, key["AccessKeyId"])),
                # Account A's registry, by its host name (the plain host would be the caller's).
                headers={"Host": f"{A}.localhost:{server.port}"},
            )
            clients.append(http)
            callers[user] = Caller(
                user_arn(user),
                account,
                server.ecr_client(key=key["AccessKeyId"], secret=key["SecretAccessKey"]),
                http,
            )
        for name, policy in repository_policies().items():
            admin_ecr.set_repository_policy(repositoryName=name, policyText=policy)
        yield World(server, admin_ecr, callers, images)
    finally:
        for http in clients:
            http.close()


def restore_policies(world: World, repository: str) -> None:
    """Put back a repository policy an allowed DeleteRepositoryPolicy removed."""
    policy = repository_policies().get(repository)
    if policy is not None:
        world.admin_ecr.set_repository_policy(
            repositoryName=repository, policyText=policy, force=True
        )


_ECR = {operation.name: operation for operation in OPERATIONS}


def _expected(scenario: Scenario, scope: str) -> str | None:
    """What the scenario expects of an operation on that kind of resource; None: not tried."""
    if scope == OWN_REPOSITORY:
        return None if USERS[scenario.user][0] != A else scenario.expect.get(REPOSITORY)
    return scenario.expect.get(scope)


def _cases(scopes: Callable[[str], str], names: list[str]) -> list[Any]:
    return [
        pytest.param(scenario, name, id=f"{name}-{scenario.name}")
        for name in names
        for scenario in SCENARIOS
        if _expected(scenario, scopes(name)) is not None
    ]


def test_the_matrix_covers_every_operation_served(tmp_path: Path) -> None:
    """Every operation the ECR front serves is in the table (the rest answer Unsupported)."""

    async def served() -> frozenset[str]:
        config = load(overrides={"data_dir": str(tmp_path / "data")}, environ={})
        node = await Node.open(config)
        try:
            return node.aws.operations("ecr")
        finally:
            await node.close()

    assert anyio.run(served) == set(_ECR)
    assert {route.action for route in ROUTES} == set(ACTIONS.values())


def check(outcome: str, message: str, expect: str, *, action: str, resource: str, arn: str) -> None:
    if expect == ALLOWED:
        assert outcome == ALLOWED, message
        return
    assert outcome == "denied", f"expected a denial, got {outcome}: {message}"
    assert message == (
        f"User: {arn} is not authorized to perform: {action} on resource: {resource} "
        + expect.format(action=action)
    )


@pytest.mark.parametrize(("scenario", "name"), _cases(lambda n: _ECR[n].scope, list(_ECR)))
def test_ecr(world: World, scenario: Scenario, name: str) -> None:
    operation = _ECR[name]
    caller = world.callers[scenario.user]
    params = operation.params(scenario.repository, world.images[scenario.repository])
    try:
        caller.ecr._make_api_call(name, params)
        outcome, message = ALLOWED, ""
    except ClientError as exc:
        error = exc.response["Error"]
        denied = error["Code"] == "AccessDeniedException"
        outcome, message = ("denied" if denied else ALLOWED), error["Message"]
    finally:
        if name == "DeleteRepositoryPolicy":
            restore_policies(world, scenario.repository)
    resource = "*" if operation.scope == ACCOUNT else repository_arn(scenario.repository)
    expect = _expected(scenario, operation.scope)
    assert expect is not None
    check(
        outcome,
        message,
        expect,
        action=f"ecr:{name}",
        resource=resource,
        arn=caller.arn,
    )


_V2 = {route.name: route for route in ROUTES}


@pytest.mark.parametrize(("scenario", "name"), _cases(lambda n: _V2[n].scope, list(_V2)))
def test_v2(world: World, scenario: Scenario, name: str) -> None:
    route = _V2[name]
    caller = world.callers[scenario.user]
    image = world.images[scenario.repository]
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"} if route.body else {}
    answer = caller.http.request(
        route.method,
        route.path(scenario.repository, image),
        content=route.body(image) if route.body else None,
        headers=headers,
    )
    assert answer.status_code != 401, answer.text
    expect = scenario.expect[route.scope]
    if answer.status_code != 403:
        assert expect == ALLOWED, f"{route.method} answered {answer.status_code}, not denied"
        return
    assert expect != ALLOWED, answer.text
    if route.method == "HEAD":
        return  # no body to read the message from
    errors = answer.json()["errors"]
    assert errors[0]["code"] == "DENIED"
    name_or_all = "*" if route.scope == REGISTRY else scenario.repository
    check(
        "denied",
        errors[0]["message"],
        expect,
        action=route.action,
        resource=f"arn:aws:ecr:{REGION}:{A}:repository/{name_or_all}",
        arn=caller.arn,
    )
