"""Roles, groups, inline and managed policies, attachments and the AWS managed policies, through
the IAM services on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cargohold.domain.identity import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    Unmodifiable,
)
from cargohold.domain.managed_policies import AWS_MANAGED_POLICIES
from cargohold.domain.policy import PolicyError
from cargohold.metadata.store import MetadataStore
from cargohold.service.authentication import Authentication
from cargohold.service.iam import IamService, paginate
from cargohold.service.identity import Identities
from cargohold.service.identity_admin import IdentityAdmin
from cargohold.service.managed_policies import ManagedPolicyService

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
EXECUTION = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"


def document(*actions: str, effect: str = "Allow", resource: str = "*") -> str:
    statement = {"Effect": effect, "Action": list(actions), "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def trust(principal: Any) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


ECS_TRUST = trust({"Service": "ecs-tasks.amazonaws.com"})


@pytest.fixture
def identities(store: MetadataStore, tmp_path: Path, now: list[float]) -> Identities:
    return Identities.from_data_dir(
        store, tmp_path, lambda: now[0], account_id=ACCOUNT, region="us-east-1"
    )


@pytest.fixture
def identity_admin(identities: Identities) -> IdentityAdmin:
    return identities.admin


@pytest.fixture
def authentication(identities: Identities) -> Authentication:
    return identities.authentication


@pytest.fixture
def iam(store: MetadataStore, now: list[float]) -> IamService:
    return IamService(store, lambda: now[0], account_id=ACCOUNT)


@pytest.fixture
async def policies(store: MetadataStore, iam: IamService, now: list[float]) -> ManagedPolicyService:
    service = ManagedPolicyService(store, iam, lambda: now[0], account_id=ACCOUNT)
    await service.ensure_aws_managed_policies()
    return service


# -- roles -------------------------------------------------------------------------------------


async def test_role_lifecycle(iam: IamService, now: list[float]) -> None:
    role = await iam.create_role(
        "ecsTaskExecutionRole", ECS_TRUST, path="/service/", description="pulls images"
    )
    assert role.id.startswith("AROA") and len(role.id) == 21
    assert role.arn == f"arn:aws:iam::{ACCOUNT}:role/service/ecsTaskExecutionRole"
    assert role.max_session_duration == 3600 and role.created_at == now[0]
    assert await iam.get_role("ECSTASKEXECUTIONROLE") == role
    assert await iam.role_by_arn(role.arn) == role
    assert [r.name for r in await iam.list_roles()] == ["ecsTaskExecutionRole"]
    assert await iam.list_roles("/other/") == []

    updated = await iam.update_role(role.name, description="new", max_session_duration=7200)
    assert updated.description == "new" and updated.max_session_duration == 7200
    await iam.update_trust_policy(role.name, trust("*"))
    assert (await iam.get_role(role.name)).trust_policy == trust("*")

    await iam.delete_role(role.name)
    with pytest.raises(NoSuchEntity, match="The role with name ecsTaskExecutionRole cannot be"):
        await iam.get_role(role.name)


async def test_role_names_are_unique_regardless_of_case(
    iam: IamService, identity_admin: IdentityAdmin
) -> None:
    await iam.create_role("Deployer", ECS_TRUST)
    with pytest.raises(EntityAlreadyExists, match="Role with name deployer already exists"):
        await iam.create_role("deployer", ECS_TRUST)
    # Users and roles are different kinds of entity: the same name is fine.
    await identity_admin.create_user("deployer")


async def test_trust_policies_are_validated(iam: IamService) -> None:
    with pytest.raises(PolicyError) as raised:
        await iam.create_role("r", json.dumps({"Version": "2012-10-17", "Statement": []}) + "x")
    assert raised.value.code == "MalformedPolicyDocument"
    no_principal = document("sts:AssumeRole")
    with pytest.raises(PolicyError) as raised:
        await iam.create_role("r", no_principal)
    assert raised.value.code == "MalformedPolicyDocument"
    assert await iam.list_roles() == []


async def test_trust_policies_must_name_principals_that_exist(
    iam: IamService, identity_admin: IdentityAdmin
) -> None:
    ghost = f"arn:aws:iam::{ACCOUNT}:user/ghost"
    with pytest.raises(PolicyError, match=f'Invalid principal in policy: "AWS":"{ghost}"'):
        await iam.create_role("r", trust({"AWS": ghost}))
    await identity_admin.create_user("ghost")
    await iam.create_role("r", trust({"AWS": ghost}))
    # An account (its id or its root) needs no such check.
    await iam.create_role("s", trust({"AWS": [OTHER_ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"]}))


async def test_invalid_role_names(iam: IamService) -> None:
    with pytest.raises(InvalidInput, match="roleName"):
        await iam.create_role("no spaces", ECS_TRUST)


async def test_a_role_with_policies_cannot_be_deleted(
    iam: IamService, policies: ManagedPolicyService
) -> None:
    await iam.create_role("r", ECS_TRUST)
    await iam.put_inline_policy("role", "r", "pull", document("ecr:BatchGetImage"))
    with pytest.raises(DeleteConflict, match="must delete policies first"):
        await iam.delete_role("r")
    await iam.delete_inline_policy("role", "r", "pull")
    await policies.attach("role", "r", EXECUTION)
    with pytest.raises(DeleteConflict, match="must detach all policies first"):
        await iam.delete_role("r")
    await policies.detach("role", "r", EXECUTION)
    await iam.delete_role("r")


# -- groups ------------------------------------------------------------------------------------


async def test_groups_and_members(iam: IamService, identity_admin: IdentityAdmin) -> None:
    group = await iam.create_group("developers", path="/teams/")
    assert group.id.startswith("AGPA")
    assert group.arn == f"arn:aws:iam::{ACCOUNT}:group/teams/developers"
    alice = await identity_admin.create_user("alice")
    await identity_admin.create_user("bob")
    await iam.add_user_to_group("developers", "alice")
    await iam.add_user_to_group("developers", "alice")  # again: no change
    await iam.add_user_to_group("Developers", "bob")
    detail = await iam.get_group("developers")
    assert detail.group == group
    assert [u.name for u in detail.users] == ["alice", "bob"]
    assert detail.users[0] == alice
    assert [g.name for g in await iam.groups_for_user("alice")] == ["developers"]
    assert [g.name for g in await iam.list_groups()] == ["developers"]
    assert await iam.list_groups("/other/") == []

    with pytest.raises(DeleteConflict, match="must remove users from group first"):
        await iam.delete_group("developers")
    with pytest.raises(DeleteConflict, match="must remove users from group first"):
        await identity_admin.delete_user("alice")
    await iam.remove_user_from_group("developers", "alice")
    with pytest.raises(NoSuchEntity, match="cannot be found in group"):
        await iam.remove_user_from_group("developers", "alice")
    await identity_admin.delete_user("alice")
    await identity_admin.delete_user("bob", force=True)
    assert (await iam.get_group("developers")).users == []
    await iam.delete_group("developers")
    with pytest.raises(NoSuchEntity, match="The group with name developers cannot be found"):
        await iam.get_group("developers")


async def test_group_names_are_unique_regardless_of_case(iam: IamService) -> None:
    await iam.create_group("Admins")
    with pytest.raises(EntityAlreadyExists, match="Group with name admins already exists"):
        await iam.create_group("admins")


async def test_membership_needs_both_to_exist(
    iam: IamService, identity_admin: IdentityAdmin
) -> None:
    await iam.create_group("g")
    with pytest.raises(NoSuchEntity, match="The user with name ghost cannot be found"):
        await iam.add_user_to_group("g", "ghost")
    await identity_admin.create_user("alice")
    with pytest.raises(NoSuchEntity, match="The group with name nope cannot be found"):
        await iam.add_user_to_group("nope", "alice")


async def test_a_user_is_in_at_most_ten_groups(
    iam: IamService, identity_admin: IdentityAdmin
) -> None:
    await identity_admin.create_user("alice")
    for index in range(10):
        await iam.create_group(f"g{index}")
        await iam.add_user_to_group(f"g{index}", "alice")
    await iam.create_group("g10")
    with pytest.raises(LimitExceeded, match="GroupsPerUser: 10"):
        await iam.add_user_to_group("g10", "alice")


# -- inline policies ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "group", "role"])
async def test_inline_policies(iam: IamService, identity_admin: IdentityAdmin, kind: str) -> None:
    if kind == "user":
        await identity_admin.create_user("e")
    elif kind == "group":
        await iam.create_group("e")
    else:
        await iam.create_role("e", ECS_TRUST)
    pull = document("ecr:BatchGetImage")
    await iam.put_inline_policy(kind, "e", "pull", pull)  # type: ignore[arg-type]
    await iam.put_inline_policy(kind, "e", "push", document("ecr:PutImage"))  # type: ignore[arg-type]
    assert await iam.list_inline_policies(kind, "e") == ["pull", "push"]  # type: ignore[arg-type]
    assert await iam.get_inline_policy(kind, "e", "pull") == pull  # type: ignore[arg-type]
    replaced = document("ecr:*")
    await iam.put_inline_policy(kind, "e", "pull", replaced)  # type: ignore[arg-type]
    assert await iam.get_inline_policy(kind, "e", "pull") == replaced  # type: ignore[arg-type]
    await iam.delete_inline_policy(kind, "e", "pull")  # type: ignore[arg-type]
    with pytest.raises(NoSuchEntity, match=f"The {kind} policy with name pull cannot be found"):
        await iam.get_inline_policy(kind, "e", "pull")  # type: ignore[arg-type]
    with pytest.raises(NoSuchEntity):
        await iam.delete_inline_policy(kind, "e", "pull")  # type: ignore[arg-type]
    with pytest.raises(NoSuchEntity, match=f"The {kind} with name ghost cannot be found"):
        await iam.put_inline_policy(kind, "ghost", "p", pull)  # type: ignore[arg-type]


async def test_inline_policies_are_validated(
    iam: IamService, identity_admin: IdentityAdmin
) -> None:
    await identity_admin.create_user("alice")
    with_principal = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*"}
            ],
        }
    )
    with pytest.raises(PolicyError, match="should not specify a principal") as raised:
        await iam.put_inline_policy("user", "alice", "p", with_principal)
    assert raised.value.code == "MalformedPolicyDocument"
    with pytest.raises(PolicyError, match="Syntax errors"):
        await iam.put_inline_policy("user", "alice", "p", "{not json")
    with pytest.raises(InvalidInput, match="policyName"):
        await iam.put_inline_policy("user", "alice", "no spaces", document("ecr:*"))
    assert await iam.list_inline_policies("user", "alice") == []


async def test_inline_policies_of_a_user_share_a_size_limit(
    iam: IamService, identity_admin: IdentityAdmin
) -> None:
    await identity_admin.create_user("alice")
    actions = [f"ecr:Action{index:04d}" for index in range(60)]  # about 1,100 characters
    await iam.put_inline_policy("user", "alice", "one", document(*actions))
    with pytest.raises(PolicyError, match="2048") as raised:
        await iam.put_inline_policy("user", "alice", "two", document(*actions))
    assert raised.value.code == "LimitExceeded"
    # Replacing a policy counts the new document instead of the old one.
    await iam.put_inline_policy("user", "alice", "one", document(*actions[:59]))


async def test_a_user_with_policies_cannot_be_deleted(
    iam: IamService, identity_admin: IdentityAdmin, policies: ManagedPolicyService
) -> None:
    await identity_admin.create_user("alice")
    await iam.put_inline_policy("user", "alice", "p", document("ecr:*"))
    with pytest.raises(DeleteConflict, match="must delete policies first"):
        await identity_admin.delete_user("alice")
    await iam.delete_inline_policy("user", "alice", "p")
    await policies.attach("user", "alice", READ_ONLY)
    with pytest.raises(DeleteConflict, match="must detach all policies first"):
        await identity_admin.delete_user("alice")
    # With force (the admin CLI) everything of the user goes.
    await identity_admin.delete_user("alice", force=True)
    assert (await policies.get_policy(READ_ONLY)).attachment_count == 0


# -- managed policies --------------------------------------------------------------------------


async def test_the_aws_managed_policies(policies: ManagedPolicyService) -> None:
    aws = await policies.list_policies(scope="AWS")
    assert {p.name for p in aws} == {
        "AmazonEC2ContainerRegistryFullAccess",
        "AmazonEC2ContainerRegistryPowerUser",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonECSTaskExecutionRolePolicy",
    }
    execution = await policies.get_policy(EXECUTION)
    assert execution.path == "/service-role/" and execution.aws_managed
    assert execution.id == "ANPAJG4T4G4PV56DE72PY" and execution.default_version == "v1"
    statements = json.loads((await policies.get_version(EXECUTION, "v1")).document)["Statement"]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ]
    read_only = await policies.get_version(READ_ONLY, "v3")
    assert read_only.is_default
    assert "ecr:PutImage" not in read_only.document
    full = json.loads(
        (
            await policies.get_version(
                "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess", "v3"
            )
        ).document
    )
    assert full["Statement"][0]["Action"] == ["ecr:*", "cloudtrail:LookupEvents"]
    assert await policies.list_policies(scope="Local") == []


async def test_aws_managed_policies_are_stored_once(
    policies: ManagedPolicyService, store: MetadataStore, iam: IamService, now: list[float]
) -> None:
    await policies.ensure_aws_managed_policies()
    # Another node starting, or another account's view, finds them in place.
    other = ManagedPolicyService(store, iam, lambda: now[0], account_id=OTHER_ACCOUNT)
    await other.ensure_aws_managed_policies()
    assert len(await policies.list_policies()) == len(AWS_MANAGED_POLICIES)
    assert len(await other.list_policies(scope="AWS")) == len(AWS_MANAGED_POLICIES)


async def test_aws_managed_policies_cannot_be_changed(policies: ManagedPolicyService) -> None:
    with pytest.raises(Unmodifiable):
        await policies.delete_policy(READ_ONLY)
    with pytest.raises(Unmodifiable):
        await policies.create_version(READ_ONLY, document("ecr:*"), set_default=True)
    with pytest.raises(Unmodifiable):
        await policies.set_default_version(READ_ONLY, "v3")


async def test_customer_managed_policy_lifecycle(
    policies: ManagedPolicyService, now: list[float]
) -> None:
    pull = document("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
    policy = await policies.create_policy("pull", pull, path="/ci/", description="pull only")
    assert policy.id.startswith("ANPA")
    assert policy.arn == f"arn:aws:iam::{ACCOUNT}:policy/ci/pull"
    assert policy.default_version == "v1" and policy.attachment_count == 0
    assert await policies.get_policy(policy.arn) == policy
    assert [p.name for p in await policies.list_policies(scope="Local")] == ["pull"]
    assert [p.name for p in await policies.list_policies(scope="Local", path_prefix="/x/")] == []
    assert (await policies.get_version(policy.arn, "v1")).document == pull

    with pytest.raises(EntityAlreadyExists, match="A policy called PULL already exists"):
        await policies.create_policy("PULL", pull)
    await policies.delete_policy(policy.arn)
    with pytest.raises(NoSuchEntity, match=f"Policy {policy.arn} was not found"):
        await policies.get_policy(policy.arn)


async def test_policy_versions(policies: ManagedPolicyService, now: list[float]) -> None:
    arn = (await policies.create_policy("p", document("ecr:ListImages"))).arn
    for index in range(2, 6):
        now[0] += 1
        version = await policies.create_version(
            arn, document(f"ecr:Action{index}"), set_default=index == 3
        )
        assert version.version_id == f"v{index}"
    assert (await policies.get_policy(arn)).default_version == "v3"
    assert [v.version_id for v in await policies.list_versions(arn)] == [
        "v5",
        "v4",
        "v3",
        "v2",
        "v1",
    ]
    with pytest.raises(LimitExceeded, match="up to 5 versions"):
        await policies.create_version(arn, document("ecr:X"), set_default=False)
    with pytest.raises(DeleteConflict, match="Cannot delete the default version"):
        await policies.delete_version(arn, "v3")
    await policies.delete_version(arn, "v2")
    # Version ids are never reused.
    assert (await policies.create_version(arn, document("ecr:Y"), set_default=True)).version_id == (
        "v6"
    )
    with pytest.raises(NoSuchEntity, match="version v2 does not exist"):
        await policies.get_version(arn, "v2")
    with pytest.raises(NoSuchEntity):
        await policies.set_default_version(arn, "v2")
    with pytest.raises(DeleteConflict, match="more than one version"):
        await policies.delete_policy(arn)
    for version in ("v1", "v3", "v4", "v5"):
        await policies.delete_version(arn, version)
    await policies.delete_policy(arn)


async def test_managed_policies_are_validated(policies: ManagedPolicyService) -> None:
    with pytest.raises(PolicyError, match="Syntax errors"):
        await policies.create_policy("p", "[]")
    no_resource = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}
    )
    with pytest.raises(PolicyError, match="must contain resources"):
        await policies.create_policy("p", no_resource)


async def test_attachments(
    policies: ManagedPolicyService, iam: IamService, identity_admin: IdentityAdmin
) -> None:
    await identity_admin.create_user("alice")
    await iam.create_group("readers")
    await iam.create_role("executor", ECS_TRUST)
    await policies.attach("user", "alice", READ_ONLY)
    await policies.attach("user", "alice", READ_ONLY)  # again: no change
    await policies.attach("group", "readers", READ_ONLY)
    await policies.attach("role", "executor", EXECUTION)
    assert (await policies.get_policy(READ_ONLY)).attachment_count == 2
    assert [p.arn for p in await policies.attached("user", "alice")] == [READ_ONLY]
    assert [p.arn for p in await policies.attached("role", "executor")] == [EXECUTION]
    assert [p.arn for p in await policies.attached("role", "executor", path_prefix="/x/")] == []
    entities = await policies.entities_for(READ_ONLY)
    assert [u.name for u in entities.users] == ["alice"]
    assert [g.name for g in entities.groups] == ["readers"]
    assert entities.roles == []
    only = await policies.list_policies(only_attached=True)
    assert {p.arn for p in only} == {READ_ONLY, EXECUTION}

    with pytest.raises(DeleteConflict, match="attached to entities"):
        custom = await policies.create_policy("c", document("ecr:ListImages"))
        await policies.attach("group", "readers", custom.arn)
        await policies.delete_policy(custom.arn)
    await policies.detach("group", "readers", custom.arn)
    await policies.delete_policy(custom.arn)

    await policies.detach("user", "alice", READ_ONLY)
    with pytest.raises(NoSuchEntity):
        await policies.detach("user", "alice", READ_ONLY)
    missing = f"arn:aws:iam::{ACCOUNT}:policy/ghost"
    with pytest.raises(NoSuchEntity, match=f"Policy {missing} does not exist or is not attachable"):
        await policies.attach("user", "alice", missing)


async def test_at_most_ten_managed_policies_per_entity(
    policies: ManagedPolicyService, identity_admin: IdentityAdmin
) -> None:
    await identity_admin.create_user("alice")
    for index in range(10):
        policy = await policies.create_policy(f"p{index}", document("ecr:ListImages"))
        await policies.attach("user", "alice", policy.arn)
    with pytest.raises(LimitExceeded, match="PoliciesPerUser: 10"):
        await policies.attach("user", "alice", READ_ONLY)


async def test_another_accounts_policies_are_invisible(
    policies: ManagedPolicyService, store: MetadataStore, iam: IamService, now: list[float]
) -> None:
    async with store.write() as tx:
        await tx.registries.ensure_registry(OTHER_ACCOUNT, "us-east-1", 0.0)
    theirs = policies.for_account(OTHER_ACCOUNT)
    policy = await theirs.create_policy("secret", document("ecr:*"))
    with pytest.raises(NoSuchEntity):
        await policies.get_policy(policy.arn)
    await iam.create_role("r", ECS_TRUST)
    with pytest.raises(NoSuchEntity, match="does not exist or is not attachable"):
        await policies.attach("role", "r", policy.arn)
    # The same name is free in each account.
    await policies.create_policy("secret", document("ecr:*"))


# -- what decides for a principal --------------------------------------------------------------


async def test_identity_policies_of_a_user(
    iam: IamService,
    identity_admin: IdentityAdmin,
    authentication: Authentication,
    policies: ManagedPolicyService,
) -> None:
    await identity_admin.create_user("alice")
    key = await identity_admin.create_access_key("alice")
    principal = await authentication.principal_for_key(key.key.id)
    assert principal is not None
    assert await iam.identity_policies(principal) == []
    await iam.put_inline_policy("user", "alice", "own", document("ecr:PutImage"))
    await policies.attach("user", "alice", READ_ONLY)
    await iam.create_group("g")
    await iam.add_user_to_group("g", "alice")
    await iam.put_inline_policy("group", "g", "group-own", document("ecr:DeleteRepository"))
    await policies.attach("group", "g", READ_ONLY)  # attached twice, counted once
    found = await iam.identity_policies(principal)
    actions = sorted(a for policy in found for s in policy.statements for a in s.actions)
    assert actions.count("ecr:BatchGetImage") == 1
    assert {"ecr:PutImage", "ecr:DeleteRepository"} <= set(actions)
    assert len(found) == 3


def test_paginate() -> None:
    items = [f"n{index:02d}" for index in range(25)]
    page, marker = paginate(items[::-1], lambda item: item, None, 10)
    assert page == items[:10] and marker == "n09"
    page, marker = paginate(items, lambda item: item, marker, 10)
    assert page == items[10:20] and marker == "n19"
    page, marker = paginate(items, lambda item: item, marker, 10)
    assert page == items[20:] and marker is None
