"""The one authorization decision: the policy engine over a caller's identity-based policies,
the resource's policies and tags, and the request's condition keys; each decision recorded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import pytest

from cargohold.domain.policy import Policy, PolicyKind, parse_policy
from cargohold.domain.principal import Principal, repository_arn
from cargohold.metadata.store import MetadataStore
from cargohold.service.authz import (
    AuthorizationRecord,
    Authorizer,
    RequestRecord,
    ResourceSide,
    denial_message,
    principal_context,
    request_keys,
    resource_account,
    resource_owner,
)
from cargohold.service.readcache import ReadCache

pytestmark = pytest.mark.anyio

ACCOUNT = "123456789012"
OTHER = "210987654321"
REPO = repository_arn("us-east-1", ACCOUNT, "team/app")
BOB = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:iam::{ACCOUNT}:user/bob",
    principal_id="AIDAAAAAAAAAAAAAAAAAA",
    access_key_id="AKIAAAAAAAAAAAAAAAAA",
    username="bob",
)
MALLORY = Principal(
    account_id=OTHER,
    arn=f"arn:aws:iam::{OTHER}:user/mallory",
    principal_id="AIDABBBBBBBBBBBBBBBBB",
    username="mallory",
)
ROOT = Principal(
    account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", principal_id=ACCOUNT, kind="root"
)
SESSION = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci",
    principal_id="AROACCCCCCCCCCCCCCCCC:ci",
    session_token_id="ASIACCCCCCCCCCCCCCCC",
    kind="assumed-role",
    identity_id="AROACCCCCCCCCCCCCCCCC",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/deployer",
)


def identity(*statements: dict[str, Any]) -> Policy:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return parse_policy(json.dumps(document), PolicyKind.INLINE)


def repository_policy(*statements: dict[str, Any]) -> Policy:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return parse_policy(json.dumps(document), PolicyKind.REPOSITORY)


def allow(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def grant(principal: str, action: str, effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Principal": {"AWS": principal}, "Action": action, **extra}


class Fake:
    """Both policy sources and the audit sink, in memory."""

    def __init__(self) -> None:
        self.identity: dict[str, list[Policy]] = {}
        self.sessions: dict[str, list[Policy]] = {}
        self.resources: dict[str, ResourceSide] = {}
        self.records: list[AuthorizationRecord] = []

    async def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        return self.identity.get(principal.arn, [])

    async def session_policies(self, principal: Principal) -> Sequence[Policy] | None:
        return self.sessions.get(principal.arn)

    async def resource_side(self, resource_arn: str, action: str) -> ResourceSide:
        found = self.resources.get(resource_arn)
        return found or ResourceSide(account_id=resource_owner(resource_arn, action))

    async def record(self, entry: AuthorizationRecord) -> None:
        self.records.append(entry)


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
def authorizer(fake: Fake) -> Authorizer:
    return Authorizer(lambda: 1_700_000_000.0, identities=fake, resources=fake, audit=fake)


def message(principal: Principal, action: str, tail: str, resource: str = REPO) -> str:
    return (
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} "
        f"{tail}"
    )


async def test_an_identity_policy_allows(fake: Fake, authorizer: Authorizer) -> None:
    fake.identity[BOB.arn] = [identity(allow("ecr:PutImage", REPO))]
    assert (await authorizer.authorize(BOB, "ecr:PutImage", REPO)).allowed
    denied = await authorizer.authorize(BOB, "ecr:BatchDeleteImage", REPO)
    assert not denied.allowed and not denied.explicit_deny
    assert denied.message == message(
        BOB,
        "ecr:BatchDeleteImage",
        "because no identity-based policy allows the ecr:BatchDeleteImage action",
    )


async def test_an_explicit_deny_wins(fake: Fake, authorizer: Authorizer) -> None:
    fake.identity[BOB.arn] = [identity(allow("ecr:*"), deny("ecr:PutImage", REPO))]
    denied = await authorizer.authorize(BOB, "ecr:PutImage", REPO)
    assert denied.explicit_deny
    assert denied.message == message(
        BOB, "ecr:PutImage", "with an explicit deny in an identity-based policy"
    )
    fake.identity[BOB.arn] = [identity(allow("ecr:*"))]
    fake.resources[REPO] = ResourceSide(
        ACCOUNT, (repository_policy(grant(BOB.arn, "ecr:PutImage", "Deny")),)
    )
    denied = await authorizer.authorize(BOB, "ecr:PutImage", REPO)
    assert denied.message == message(
        BOB, "ecr:PutImage", "with an explicit deny in a resource-based policy"
    )


async def test_a_repository_policy_alone_allows_within_the_account(
    fake: Fake, authorizer: Authorizer
) -> None:
    fake.resources[REPO] = ResourceSide(
        ACCOUNT, (repository_policy(grant(BOB.arn, "ecr:BatchGetImage")),)
    )
    assert (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO)).allowed
    # Naming the account delegates to it: nothing is allowed by that alone.
    fake.resources[REPO] = ResourceSide(
        ACCOUNT, (repository_policy(grant(ACCOUNT, "ecr:BatchGetImage")),)
    )
    assert not (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO)).allowed


async def test_across_accounts_both_sides_must_allow(fake: Fake, authorizer: Authorizer) -> None:
    fake.identity[MALLORY.arn] = [identity(allow("ecr:*"))]
    denied = await authorizer.authorize(MALLORY, "ecr:BatchGetImage", REPO)
    assert denied.message == message(
        MALLORY,
        "ecr:BatchGetImage",
        "because no resource-based policy allows the ecr:BatchGetImage action",
    )
    fake.resources[REPO] = ResourceSide(
        ACCOUNT, (repository_policy(grant(OTHER, "ecr:BatchGetImage")),)
    )
    assert (await authorizer.authorize(MALLORY, "ecr:BatchGetImage", REPO)).allowed
    fake.identity[MALLORY.arn] = []
    denied = await authorizer.authorize(MALLORY, "ecr:BatchGetImage", REPO)
    assert denied.message == message(
        MALLORY,
        "ecr:BatchGetImage",
        "because no identity-based policy allows the ecr:BatchGetImage action",
    )


async def test_root_needs_no_identity_policy_but_obeys_a_deny(
    fake: Fake, authorizer: Authorizer
) -> None:
    assert (await authorizer.authorize(ROOT, "ecr:DeleteRepository", REPO)).allowed
    fake.resources[REPO] = ResourceSide(
        ACCOUNT, (repository_policy(grant("*", "ecr:DeleteRepository", "Deny")),)
    )
    assert (await authorizer.authorize(ROOT, "ecr:DeleteRepository", REPO)).explicit_deny


async def test_condition_keys_reach_the_policies(fake: Fake, authorizer: Authorizer) -> None:
    fake.identity[BOB.arn] = [
        identity(
            allow(
                "ecr:BatchGetImage",
                Condition={
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                    "StringEquals": {"aws:ResourceTag/team": "red", "aws:username": "bob"},
                    "Bool": {"aws:SecureTransport": "false"},
                },
            )
        )
    ]
    fake.resources[REPO] = ResourceSide(ACCOUNT, (), {"aws:ResourceTag/team": "red"})
    inside = {"aws:SourceIp": "10.1.2.3", "aws:SecureTransport": False}
    assert (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO, inside)).allowed
    outside = {"aws:SourceIp": "192.0.2.1", "aws:SecureTransport": False}
    assert not (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO, outside)).allowed
    fake.resources[REPO] = ResourceSide(ACCOUNT, (), {"aws:ResourceTag/team": "blue"})
    assert not (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO, inside)).allowed


async def test_session_policies_narrow_a_role_session(fake: Fake, authorizer: Authorizer) -> None:
    fake.identity[SESSION.arn] = [identity(allow("ecr:*"))]
    assert (await authorizer.authorize(SESSION, "ecr:PutImage", REPO)).allowed
    fake.sessions[SESSION.arn] = [identity(allow("ecr:BatchGetImage"))]
    assert (await authorizer.authorize(SESSION, "ecr:BatchGetImage", REPO)).allowed
    denied = await authorizer.authorize(SESSION, "ecr:PutImage", REPO)
    assert denied.message == message(
        SESSION, "ecr:PutImage", "because no session policy allows the ecr:PutImage action"
    )


async def test_aws_managed_policies_are_read_by_all_and_changed_by_none(
    fake: Fake, authorizer: Authorizer
) -> None:
    arn = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
    fake.identity[BOB.arn] = [identity(allow("iam:*"))]
    assert (await authorizer.authorize(BOB, "iam:GetPolicy", arn)).allowed
    denied = await authorizer.authorize(BOB, "iam:DeletePolicy", arn)
    assert not denied.allowed
    assert "no resource-based policy allows the iam:DeletePolicy action" in denied.message


async def test_sts_words_its_denials_without_a_reason(authorizer: Authorizer) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/deployer"
    denied = await authorizer.authorize(BOB, "sts:AssumeRole", role)
    assert denied.message == (
        f"User: {BOB.arn} is not authorized to perform: sts:AssumeRole on resource: {role}"
    )


async def test_every_decision_is_recorded(fake: Fake, authorizer: Authorizer) -> None:
    fake.identity[BOB.arn] = [identity(allow("ecr:BatchGetImage"))]
    record = RequestRecord(event_source="ecr.amazonaws.com", parameters={"repositoryName": "x"})
    await authorizer.authorize(
        BOB, "ecr:BatchGetImage", REPO, {"aws:SourceIp": "127.0.0.1"}, record=record
    )
    await authorizer.authorize(MALLORY, "ecr:PutImage", REPO)
    allowed, denied = fake.records
    assert allowed.decision.allowed and allowed.source_ip == "127.0.0.1"
    assert allowed.request == record and allowed.resource_account == ACCOUNT
    assert not denied.decision.allowed and denied.principal == MALLORY
    assert denied.time == 1_700_000_000.0


class Generation:
    """What a `ReadCache` reads of the metadata store: the write generation alone."""

    generation = 0

    def observe(self) -> None:
        return None


async def test_decisions_are_kept_until_a_write_and_each_is_still_recorded(fake: Fake) -> None:
    store = Generation()
    authorizer = Authorizer(
        lambda: 1_700_000_000.0,
        identities=fake,
        resources=fake,
        audit=fake,
        decisions=ReadCache(cast(MetadataStore, store)),
    )
    fake.identity[BOB.arn] = [identity(allow("ecr:BatchGetImage"))]
    local = {"aws:SourceIp": "127.0.0.1"}
    assert (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO, local)).allowed
    fake.identity[BOB.arn] = []  # changed behind the cache's back: the kept decision holds
    assert (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO, local)).allowed
    # Another request context is another question.
    elsewhere = {"aws:SourceIp": "192.0.2.1"}
    assert not (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO, elsewhere)).allowed
    store.generation += 1  # a write to the store drops every kept decision
    assert not (await authorizer.authorize(BOB, "ecr:BatchGetImage", REPO, local)).allowed
    assert [r.decision.allowed for r in fake.records] == [True, True, False, False]


async def test_simulate_replaces_the_resource_policies_and_records_nothing(
    fake: Fake, authorizer: Authorizer
) -> None:
    fake.identity[BOB.arn] = [identity(allow("ecr:*"))]
    lockout = repository_policy(grant(BOB.arn, "ecr:SetRepositoryPolicy", "Deny"))
    decision = await authorizer.simulate(
        BOB, "ecr:SetRepositoryPolicy", REPO, resource_policies=lambda side: (lockout,)
    )
    assert decision.explicit_deny and fake.records == []


def test_helpers() -> None:
    assert resource_account(f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/a/b:c") == ACCOUNT
    assert resource_account("arn:aws:s3:::bucket") is None
    assert resource_account("*") is None
    assert resource_owner("arn:aws:iam::aws:policy/X", "iam:ListPolicyVersions") is None
    assert resource_owner("arn:aws:iam::aws:policy/X", "iam:CreatePolicyVersion") == "aws"
    assert denial_message(BOB, "ecr:X", "arn:r") == (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: ecr:X "
        "on resource: arn:r"
    )
    assert principal_context(BOB, 1_700_000_000.5) == {
        "aws:PrincipalArn": BOB.arn,
        "aws:PrincipalAccount": ACCOUNT,
        "aws:PrincipalType": "User",
        "aws:userid": BOB.principal_id,
        "aws:username": "bob",
        "aws:CurrentTime": "2023-11-14T22:13:20Z",
        "aws:EpochTime": "1700000000",
    }
    # A role session is its role, as aws:PrincipalArn sees it.
    assert principal_context(SESSION, 0)["aws:PrincipalArn"] == SESSION.role_arn
    assert request_keys(
        {"aws:SecureTransport": True, "aws:SourceIp": None, "aws:TagKeys": ["a", "b"]}
    ) == {"aws:SecureTransport": "true", "aws:TagKeys": ("a", "b")}
