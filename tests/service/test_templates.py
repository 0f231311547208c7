"""TemplateService on SQLite and PostgreSQL: repository creation templates, and how they reach
into `/v2/` (CREATE_ON_PUSH)."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import pytest

from cargohold.domain.errors import (
    InvalidParameter,
    NameUnknown,
    TemplateAlreadyExists,
    TemplateNotFound,
    TooManyTags,
)
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.repositories import RepositoryService
from cargohold.service.templates import TemplateService
from support.clock import Clock

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repos(store: MetadataStore, clock: Clock) -> RepositoryService:
    return RepositoryService(store, clock, region=REGION)


@pytest.fixture
def templates(store: MetadataStore, clock: Clock) -> TemplateService:
    return TemplateService(store, clock)


def arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def tags(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": str(i)} for i in range(count)]


# -- creation templates -----------------------------------------------------------------------

TEMPLATE: dict[str, Any] = {
    "description": "production images",
    "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": ""},
    "resourceTags": [{"Key": "env", "Value": "prod"}],
    "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
    "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"}],
    "repositoryPolicy": (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "ecr:BatchGetImage"}]}'
    ),
    "lifecyclePolicy": '{"rules": []}',
    "appliedFor": ["CREATE_ON_PUSH", "REPLICATION"],
    "customRoleArn": "arn:aws:iam::123456789012:role/ecr-templates",
}


async def test_create_template_records_everything(templates: TemplateService) -> None:
    template = await templates.create_template(ACCOUNT, "prod", TEMPLATE)
    assert template.prefix == "prod"
    expected = {**TEMPLATE, "encryptionConfiguration": {"encryptionType": "KMS"}}
    assert template.settings == expected
    assert template.created_at == template.updated_at


async def test_create_template_defaults(templates: TemplateService) -> None:
    template = await templates.create_template(ACCOUNT, "ROOT", {"appliedFor": ["REPLICATION"]})
    assert template.settings == {
        "appliedFor": ["REPLICATION"],
        "imageTagMutability": "MUTABLE",
        "encryptionConfiguration": {"encryptionType": "AES256"},
        "resourceTags": [],
    }


async def test_template_prefix_takes_an_implied_slash(templates: TemplateService) -> None:
    await templates.create_template(ACCOUNT, "prod/", {"appliedFor": ["REPLICATION"]})
    with pytest.raises(TemplateAlreadyExists) as caught:
        await templates.create_template(ACCOUNT, "prod", {"appliedFor": ["CREATE_ON_PUSH"]})
    assert caught.value.message == (
        "The repository creation template with the prefix 'prod' already exists in the "
        f"registry with id '{ACCOUNT}'"
    )


async def test_template_errors(templates: TemplateService) -> None:
    with pytest.raises(InvalidParameter, match="appliedFor"):
        await templates.create_template(ACCOUNT, "prod", {})
    with pytest.raises(InvalidParameter, match="appliedFor"):
        await templates.create_template(ACCOUNT, "prod", {"appliedFor": []})
    with pytest.raises(InvalidParameter, match="customRoleArn"):
        await templates.create_template(
            ACCOUNT, "prod", {"appliedFor": ["REPLICATION"], "customRoleArn": "not-an-arn"}
        )
    with pytest.raises(InvalidParameter, match="imageTagMutabilityExclusionFilters"):
        await templates.create_template(
            ACCOUNT,
            "prod",
            {"appliedFor": ["REPLICATION"], "imageTagMutability": "MUTABLE_WITH_EXCLUSION"},
        )
    with pytest.raises(TooManyTags):
        await templates.create_template(
            ACCOUNT, "prod", {"appliedFor": ["REPLICATION"], "resourceTags": tags(51)}
        )
    with pytest.raises(InvalidParameter, match="prefix"):
        await templates.create_template(ACCOUNT, "Prod", {"appliedFor": ["REPLICATION"]})
    missing = (
        "The repository creation template with the prefix 'prod' does not exist in the "
        f"registry with id '{ACCOUNT}'"
    )
    with pytest.raises(TemplateNotFound) as caught:
        await templates.update_template(ACCOUNT, "prod", {"description": "x"})
    assert caught.value.message == missing
    with pytest.raises(TemplateNotFound) as caught:
        await templates.delete_template(ACCOUNT, "prod")
    assert caught.value.message == missing


async def test_update_template_changes_only_what_it_names(templates: TemplateService) -> None:
    created = await templates.create_template(ACCOUNT, "prod", TEMPLATE)
    updated = await templates.update_template(
        ACCOUNT, "prod", {"description": "new", "imageTagMutability": "MUTABLE"}
    )
    assert updated.settings["description"] == "new"
    assert updated.settings["imageTagMutability"] == "MUTABLE"
    assert "imageTagMutabilityExclusionFilters" not in updated.settings
    assert updated.settings["resourceTags"] == TEMPLATE["resourceTags"]
    assert updated.settings["appliedFor"] == TEMPLATE["appliedFor"]
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    # Switching back to an exclusion mode needs filters again.
    with pytest.raises(InvalidParameter):
        await templates.update_template(
            ACCOUNT, "prod", {"imageTagMutability": "MUTABLE_WITH_EXCLUSION"}
        )
    again = await templates.update_template(
        ACCOUNT,
        "prod",
        {
            "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "v*"}],
        },
    )
    kept = await templates.update_template(ACCOUNT, "prod", {"customRoleArn": ""})
    assert (
        kept.settings["imageTagMutabilityExclusionFilters"]
        == (again.settings["imageTagMutabilityExclusionFilters"])
    )


async def test_delete_template_returns_it(templates: TemplateService) -> None:
    await templates.create_template(ACCOUNT, "prod", TEMPLATE)
    deleted = await templates.delete_template(ACCOUNT, "prod")
    assert deleted.settings["description"] == TEMPLATE["description"]
    assert (await templates.describe_templates(ACCOUNT)).items == []


async def test_describe_templates_by_prefix_and_by_page(templates: TemplateService) -> None:
    prefixes = ["ROOT", "a", "b/c", "b", "d"]
    for prefix in prefixes:
        await templates.create_template(ACCOUNT, prefix, {"appliedFor": ["CREATE_ON_PUSH"]})
    chosen = await templates.describe_templates(ACCOUNT, ["b/c", "zz", "ROOT"])
    assert sorted(t.prefix for t in chosen.items) == ["ROOT", "b/c"]
    seen: list[str] = []
    token: str | None = None
    while True:
        page = await templates.describe_templates(ACCOUNT, max_results=2, next_token=token)
        seen += [t.prefix for t in page.items]
        token = page.next_token
        if token is None:
            break
    assert seen == sorted(prefixes)
    with pytest.raises(InvalidParameter, match="nextToken"):
        await templates.describe_templates(ACCOUNT, next_token="bm9wZQ")


# -- CREATE_ON_PUSH ---------------------------------------------------------------------------


async def test_no_template_creates_nothing(
    templates: TemplateService, repos: RepositoryService
) -> None:
    assert await templates.create_from_template(ACCOUNT, "app") is None
    await templates.create_template(ACCOUNT, "ROOT", {"appliedFor": ["REPLICATION"]})
    assert await templates.create_from_template(ACCOUNT, "app") is None
    with pytest.raises(NameUnknown):
        await repos.repository(ACCOUNT, "app")


async def test_root_template_applies_its_settings(
    templates: TemplateService, repos: RepositoryService
) -> None:
    await templates.create_template(ACCOUNT, "ROOT", TEMPLATE)
    created = await templates.create_from_template(ACCOUNT, "anything/at/all")
    assert created is not None
    assert created.tag_mutability == "IMMUTABLE_WITH_EXCLUSION"
    assert created.tag_mutability_filters == [{"filterType": "WILDCARD", "filter": "latest"}]
    assert created.encryption == {"encryptionType": "KMS"}
    assert await repos.list_tags(arn("anything/at/all")) == {"env": "prod"}
    # A second push finds the repository it made.
    assert await templates.create_from_template(ACCOUNT, "anything/at/all") == created


async def test_most_specific_template_wins(
    templates: TemplateService, repos: RepositoryService
) -> None:
    push = ["CREATE_ON_PUSH"]
    await templates.create_template(ACCOUNT, "ROOT", {"appliedFor": push})
    await templates.create_template(
        ACCOUNT, "prod", {"appliedFor": push, "imageTagMutability": "IMMUTABLE"}
    )
    await templates.create_template(
        ACCOUNT,
        "prod/team",
        {"appliedFor": push, "resourceTags": [{"Key": "team", "Value": "yes"}]},
    )
    # Applied for replication only: invisible to a push.
    await templates.create_template(
        ACCOUNT, "prod/team/x", {"appliedFor": ["REPLICATION"], "imageTagMutability": "IMMUTABLE"}
    )
    team = await templates.create_from_template(ACCOUNT, "prod/team/x/app")
    prod = await templates.create_from_template(ACCOUNT, "prod/other")
    # `prod` means `prod/`: neither `prod` itself nor `production/…` is under it.
    bare = await templates.create_from_template(ACCOUNT, "prod")
    near = await templates.create_from_template(ACCOUNT, "production/app")
    assert team is not None and prod is not None and bare is not None and near is not None
    assert team.tag_mutability == "MUTABLE"
    assert await repos.list_tags(arn("prod/team/x/app")) == {"team": "yes"}
    assert prod.tag_mutability == "IMMUTABLE"
    assert bare.tag_mutability == "MUTABLE"
    assert near.tag_mutability == "MUTABLE"


async def test_concurrent_pushes_create_one_repository(templates: TemplateService) -> None:
    await templates.create_template(ACCOUNT, "ROOT", {"appliedFor": ["CREATE_ON_PUSH"]})
    results: list[Repository | None] = []

    async def push() -> None:
        results.append(await templates.create_from_template(ACCOUNT, "raced"))

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(push)
    ids = {r.id for r in results if r is not None}
    assert len(results) == 4 and len(ids) == 1
