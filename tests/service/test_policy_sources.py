"""Which policies speak to a request, as the metadata store holds them (SQLite and PostgreSQL):
identity documents of a user and its groups, the administrator's built-in access, a
repository's policy and tags, the registry policy and its scope, a role's trust policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cargohold.domain.identity import GROUP, USER
from cargohold.domain.policy import PolicyKind
from cargohold.domain.principal import Principal
from cargohold.metadata.store import MetadataStore
from cargohold.service.authz import ResourceSide
from cargohold.service.iam import IamService
from cargohold.service.identity import Identities
from cargohold.service.identity_admin import IdentityAdmin
from cargohold.service.identity_policies import ADMINISTRATOR_ACCESS, IdentityPolicies
from cargohold.service.managed_policies import ManagedPolicyService
from cargohold.service.policies import ResourcePolicies

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app"


def document(action: str, effect: str = "Allow", **extra: Any) -> str:
    statement = {"Effect": effect, "Action": action, **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def actions(policies: Any) -> list[tuple[str, ...]]:
    return [statement.actions for policy in policies for statement in policy.statements]


@pytest.fixture
def identities(store: MetadataStore, tmp_path: Path, now: list[float]) -> Identities:
    return Identities.from_data_dir(
        store, tmp_path, lambda: now[0], account_id=ACCOUNT, region="us-east-1"
    )


@pytest.fixture
def identity_admin(identities: Identities) -> IdentityAdmin:
    return identities.admin


@pytest.fixture
def iam(store: MetadataStore, now: list[float]) -> IamService:
    return IamService(store, lambda: now[0], account_id=ACCOUNT)


async def principal_of(identities: Identities, name: str) -> Principal:
    await identities.admin.create_user(name)
    key = (await identities.admin.create_access_key(name)).key.id
    principal = await identities.authentication.principal_for_key(key)
    assert principal is not None
    return principal


async def test_a_users_policies_and_its_groups(
    store: MetadataStore, identities: Identities, iam: IamService, now: list[float]
) -> None:
    bob = await principal_of(identities, "bob")
    source = IdentityPolicies(store, iam)
    assert list(await source.identity_policies(bob)) == []
    await iam.put_inline_policy(USER, "bob", "own", document("ecr:ListImages", Resource="*"))
    await iam.create_group("readers")
    await iam.add_user_to_group("readers", "bob")
    await iam.put_inline_policy(GROUP, "readers", "g", document("ecr:BatchGetImage", Resource="*"))
    managed = ManagedPolicyService(store, iam, lambda: now[0], account_id=ACCOUNT)
    await managed.ensure_aws_managed_policies()
    await managed.attach(
        GROUP, "readers", "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly"
    )
    found = await source.identity_policies(bob)
    assert actions(found)[:2] == [("ecr:ListImages",), ("ecr:BatchGetImage",)]
    assert "ecr:GetDownloadUrlForLayer" in actions(found)[2]
    assert await source.session_policies(bob) is None


async def test_the_administrator_holds_administrator_access(
    store: MetadataStore, identity_admin: IdentityAdmin, iam: IamService
) -> None:
    admin = await identity_admin.ensure_administrator()
    principal = admin.user.as_principal(admin.key.id)
    found = await IdentityPolicies(store, iam).identity_policies(principal)
    assert list(found) == [ADMINISTRATOR_ACCESS]
    # IAM's own reading of a principal's policies (STS uses it) agrees.
    assert await iam.identity_policies(principal) == [ADMINISTRATOR_ACCESS]


async def test_a_repository_its_tags_and_the_registry_policy(store: MetadataStore) -> None:
    source = ResourcePolicies(store)
    missing = await source.resource_side(REPO, "ecr:ListImages")
    assert missing == ResourceSide(ACCOUNT, (), {})
    repository_policy = document("ecr:ListImages", Principal="*")
    registry_policy = document(
        "ecr:ReplicateImage",
        Principal={"AWS": "210987654321"},
        Resource=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*",
    )
    async with store.write() as tx:
        repository = await tx.repositories.create_repository(ACCOUNT, "team/app", 0.0)
        await tx.repositories.put_resource_tags(repository.id, {"team": "red", "tier": "1"})
        await tx.policies.put_repository_policy(repository.id, repository_policy, 0.0)
        await tx.policies.put_registry_policy(ACCOUNT, registry_policy, 0.0)
    found = await source.resource_side(REPO, "ecr:ListImages")
    assert found.account_id == ACCOUNT
    assert [p.kind for p in found.policies] == [PolicyKind.REPOSITORY, PolicyKind.REGISTRY]
    assert found.context == {
        "aws:ResourceTag/team": "red",
        "ecr:ResourceTag/team": "red",
        "aws:ResourceTag/tier": "1",
        "ecr:ResourceTag/tier": "1",
    }
    everything = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/*"
    listed = await source.resource_side(everything, "ecr:X")
    assert [p.kind for p in listed.policies] == [PolicyKind.REGISTRY]
    assert listed.context == {}
    # Under scope V1 the registry policy speaks for three actions only.
    async with store.write() as tx:
        await tx.templates.put_account_setting(ACCOUNT, "REGISTRY_POLICY_SCOPE", "V1")
    v1 = await source.resource_side(REPO, "ecr:ListImages")
    assert [p.kind for p in v1.policies] == [PolicyKind.REPOSITORY]
    v1 = await source.resource_side(REPO, "ecr:ReplicateImage")
    assert [p.kind for p in v1.policies] == [PolicyKind.REPOSITORY, PolicyKind.REGISTRY]


async def test_a_roles_trust_policy_for_assume_role(
    store: MetadataStore, identities: Identities, iam: IamService
) -> None:
    bob = await principal_of(identities, "bob")
    trust = document("sts:AssumeRole", Principal={"AWS": bob.arn})
    role = await iam.create_role("deployer", trust)
    source = ResourcePolicies(store)
    found = await source.resource_side(role.arn, "sts:AssumeRole")
    assert [p.kind for p in found.policies] == [PolicyKind.TRUST]
    assert (await source.resource_side(role.arn, "iam:GetRole")).policies == ()
    absent = f"arn:aws:iam::{ACCOUNT}:role/absent"
    assert await source.resource_side(absent, "sts:AssumeRole") == ResourceSide(ACCOUNT)
