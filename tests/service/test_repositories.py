"""RepositoryService on SQLite and PostgreSQL: repositories, resource tags, account settings,
and how BLOB_MOUNTING reaches into `/v2/`."""

from __future__ import annotations

import pytest

from cargohold.domain.errors import (
    InvalidParameter,
    InvalidTagParameter,
    NameUnknown,
    RepositoryAlreadyExists,
    RepositoryNotEmpty,
    TooManyTags,
)
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.repositories import RepositoryService, RepositorySettings
from support.clock import Clock

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

ACCOUNT = "123456789012"
OTHER = "210987654321"
REGION = "us-east-1"


@pytest.fixture
def repos(store: MetadataStore) -> RepositoryService:
    return RepositoryService(store, Clock(), region=REGION)


def arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def tags(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": str(i)} for i in range(count)]


async def add_image(store: MetadataStore, repository: Repository) -> None:
    async with store.write() as tx:
        await tx.manifests.put_manifest(
            repository_id=repository.id,
            digest="sha256:" + "a" * 64,
            media_type="application/vnd.oci.image.manifest.v1+json",
            artifact_type=None,
            subject_digest=None,
            content=b"{}",
            image_size=0,
            annotations={},
            blob_digests=[],
            child_digests=[],
            now=5.0,
        )


# -- repositories -----------------------------------------------------------------------------


async def test_create_repository_defaults(repos: RepositoryService) -> None:
    created = await repos.create_repository(ACCOUNT, "team/app")
    assert created.tag_mutability == "MUTABLE"
    assert created.tag_mutability_filters == []
    assert created.scan_on_push is False
    assert created.encryption == {"encryptionType": "AES256"}
    assert created.created_at > 1_700_000_000
    assert await repos.repository(ACCOUNT, "team/app") == created


async def test_create_repository_records_every_setting(repos: RepositoryService) -> None:
    settings = RepositorySettings.checked(
        mutability="IMMUTABLE_WITH_EXCLUSION",
        exclusion_filters=[{"filterType": "WILDCARD", "filter": "latest*"}],
        scan_on_push=True,
        encryption={"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:1:key/k"},
        tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": ""}],
    )
    created = await repos.create_repository(ACCOUNT, "app", settings)
    assert created.tag_mutability == "IMMUTABLE_WITH_EXCLUSION"
    assert created.tag_mutability_filters == [{"filterType": "WILDCARD", "filter": "latest*"}]
    assert created.scan_on_push is True
    assert created.encryption == {
        "encryptionType": "KMS",
        "kmsKey": "arn:aws:kms:us-east-1:1:key/k",
    }
    assert await repos.list_tags(arn("app")) == {"env": "", "team": "a"}


async def test_create_repository_twice_is_refused_in_ecr_words(repos: RepositoryService) -> None:
    await repos.create_repository(ACCOUNT, "app")
    with pytest.raises(RepositoryAlreadyExists) as caught:
        await repos.create_repository(ACCOUNT, "app")
    assert caught.value.message == (
        f"The repository with name 'app' already exists in the registry with id '{ACCOUNT}'"
    )


async def test_create_repository_in_unknown_registry(repos: RepositoryService) -> None:
    with pytest.raises(InvalidParameter, match="registryId"):
        await repos.create_repository(OTHER, "app")


@pytest.mark.parametrize(
    ("mode", "filters", "words"),
    [
        ("IMMUTABLE_WITH_EXCLUSION", None, "can't be null"),
        ("MUTABLE_WITH_EXCLUSION", [], "can't be null"),
        ("MUTABLE", [{"filterType": "WILDCARD", "filter": "x"}], "must be null"),
        ("IMMUTABLE", [{"filterType": "WILDCARD", "filter": "x"}], "must be null"),
        ("SOMETIMES", None, "enum value set"),
        ("MUTABLE_WITH_EXCLUSION", [{"filterType": "REGEX", "filter": "x"}], "filterType"),
        ("MUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "a b"}], "filter"),
        (
            "MUTABLE_WITH_EXCLUSION",
            [{"filterType": "WILDCARD", "filter": f"f{i}"} for i in range(6)],
            "less than or equal to 5",
        ),
    ],
)
def test_tag_mutability_rules(mode: str, filters: list[dict[str, str]] | None, words: str) -> None:
    with pytest.raises(InvalidParameter, match=words):
        RepositorySettings.checked(mutability=mode, exclusion_filters=filters)


def test_encryption_rules() -> None:
    with pytest.raises(InvalidParameter, match="encryptionConfiguration"):
        RepositorySettings.checked(encryption={"encryptionType": "AES256", "kmsKey": "k"})
    kms = RepositorySettings.checked(encryption={"encryptionType": "KMS"})
    assert kms.encryption == {"encryptionType": "KMS"}


@pytest.mark.parametrize(
    "bad",
    [
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "", "Value": "v"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "aws:owner", "Value": "v"}],
        [{"Key": "AWS:owner", "Value": "v"}],
    ],
)
def test_invalid_tags(bad: list[dict[str, str]]) -> None:
    with pytest.raises(InvalidTagParameter):
        RepositorySettings.checked(tags=bad)


def test_tag_limits_are_inclusive() -> None:
    settings = RepositorySettings.checked(tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    assert settings.tags == {"k" * 128: "v" * 256}
    assert len(RepositorySettings.checked(tags=tags(50)).tags) == 50
    with pytest.raises(TooManyTags, match=r"maximum number of tags .* is 50"):
        RepositorySettings.checked(tags=tags(51))


async def test_delete_repository_with_images_needs_force(
    repos: RepositoryService, store: MetadataStore
) -> None:
    repository = await repos.create_repository(ACCOUNT, "app")
    await add_image(store, repository)
    with pytest.raises(RepositoryNotEmpty) as caught:
        await repos.delete_repository(ACCOUNT, "app", force=False)
    assert caught.value.message == (
        f"The repository with name 'app' in registry with id '{ACCOUNT}' cannot be deleted "
        "because it still contains images"
    )
    deleted = await repos.delete_repository(ACCOUNT, "app", force=True)
    assert deleted.name == "app"
    with pytest.raises(NameUnknown):
        await repos.repository(ACCOUNT, "app")


async def test_delete_empty_repository_and_its_tags(repos: RepositoryService) -> None:
    await repos.create_repository(ACCOUNT, "app", RepositorySettings.checked(tags=tags(3)))
    await repos.delete_repository(ACCOUNT, "app", force=False)
    # A new repository of the same name starts without the old one's tags.
    await repos.create_repository(ACCOUNT, "app")
    assert await repos.list_tags(arn("app")) == {}


async def test_delete_missing_repository(repos: RepositoryService) -> None:
    with pytest.raises(NameUnknown) as caught:
        await repos.delete_repository(ACCOUNT, "nope", force=True)
    assert caught.value.message == (
        f"The repository with name 'nope' does not exist in the registry with id '{ACCOUNT}'"
    )


async def test_describe_named_repositories(repos: RepositoryService) -> None:
    for name in ("b", "a", "c"):
        await repos.create_repository(ACCOUNT, f"{name}{name}")
    page = await repos.describe_repositories(ACCOUNT, ["cc", "aa", "cc"])
    assert [r.name for r in page.items] == ["cc", "aa"]
    assert page.next_token is None
    with pytest.raises(NameUnknown, match="'zz' does not exist"):
        await repos.describe_repositories(ACCOUNT, ["aa", "zz"])


async def test_describe_names_with_pagination_is_refused(repos: RepositoryService) -> None:
    await repos.create_repository(ACCOUNT, "aa")
    with pytest.raises(InvalidParameter, match="maxResults"):
        await repos.describe_repositories(ACCOUNT, ["aa"], max_results=1)
    with pytest.raises(InvalidParameter, match="nextToken"):
        await repos.describe_repositories(ACCOUNT, ["aa"], next_token="x")


async def test_describe_repositories_pages(repos: RepositoryService) -> None:
    names = [f"repo-{i:02}" for i in range(7)]
    for name in reversed(names):
        await repos.create_repository(ACCOUNT, name)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = await repos.describe_repositories(ACCOUNT, max_results=3, next_token=token)
        seen += [r.name for r in page.items]
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert seen == names
    assert pages == 3
    everything = await repos.describe_repositories(ACCOUNT)
    assert [r.name for r in everything.items] == names


async def test_exactly_one_full_page_has_no_token(repos: RepositoryService) -> None:
    for name in ("aa", "bb"):
        await repos.create_repository(ACCOUNT, name)
    page = await repos.describe_repositories(ACCOUNT, max_results=2)
    assert page.next_token is None


@pytest.mark.parametrize("token", ["garbage!", "e30", "eyJrIjoidGVtcGxhdGVzIiwiYSI6IngifQ"])
async def test_invalid_next_token(repos: RepositoryService, token: str) -> None:
    # "e30" is `{}`; the last is a templates token, which repositories do not take.
    with pytest.raises(InvalidParameter, match="nextToken"):
        await repos.describe_repositories(ACCOUNT, next_token=token)


async def test_describe_unknown_registry(repos: RepositoryService) -> None:
    with pytest.raises(InvalidParameter, match=OTHER):
        await repos.describe_repositories(OTHER)
    with pytest.raises(NameUnknown, match=OTHER):
        await repos.describe_repositories(OTHER, ["aa"])


async def test_put_tag_mutability_all_modes(repos: RepositoryService) -> None:
    await repos.create_repository(ACCOUNT, "app")
    wildcard = [{"filterType": "WILDCARD", "filter": "dev-*"}]
    for mode, filters in [
        ("IMMUTABLE", None),
        ("IMMUTABLE_WITH_EXCLUSION", wildcard),
        ("MUTABLE_WITH_EXCLUSION", wildcard),
        ("MUTABLE", None),
    ]:
        updated = await repos.put_tag_mutability(ACCOUNT, "app", mode, filters)
        assert updated.tag_mutability == mode
        assert updated.tag_mutability_filters == (filters or [])
    with pytest.raises(InvalidParameter):
        await repos.put_tag_mutability(ACCOUNT, "app", "IMMUTABLE_WITH_EXCLUSION", None)
    with pytest.raises(NameUnknown):
        await repos.put_tag_mutability(ACCOUNT, "nope", "IMMUTABLE")


# -- resource tags ----------------------------------------------------------------------------


async def test_tag_untag_list(repos: RepositoryService) -> None:
    await repos.create_repository(ACCOUNT, "team/app")
    await repos.tag_resource(
        arn("team/app"), [{"Key": "b", "Value": "1"}, {"Key": "a", "Value": "2"}]
    )
    await repos.tag_resource(arn("team/app"), [{"Key": "b", "Value": "3"}])
    assert await repos.list_tags(arn("team/app")) == {"a": "2", "b": "3"}
    await repos.untag_resource(arn("team/app"), ["b", "never-there"])
    assert await repos.list_tags(arn("team/app")) == {"a": "2"}


async def test_tag_resource_counts_existing_tags(repos: RepositoryService) -> None:
    await repos.create_repository(ACCOUNT, "app", RepositorySettings.checked(tags=tags(45)))
    # Overwriting existing keys does not add to the count.
    await repos.tag_resource(arn("app"), tags(45) + tags(5, "n"))
    with pytest.raises(TooManyTags):
        await repos.tag_resource(arn("app"), tags(1, "x"))
    assert len(await repos.list_tags(arn("app"))) == 50


@pytest.mark.parametrize(
    "resource",
    [
        "app",
        "arn:aws:s3:::bucket",
        "arn:aws:ecr:us-east-1:123456789012:repository/",
        "arn:aws:ecr:us-east-1:123456789012:repository/Bad_Name",
        "arn:aws:ecr:us-east-1:1234:repository/app",
        "arn:aws:ecr:eu-west-1:123456789012:repository/app",
        "arn:aws:ecr:us-east-1:123456789012:pull-through-cache-rule/app",
    ],
)
async def test_invalid_resource_arn(repos: RepositoryService, resource: str) -> None:
    await repos.create_repository(ACCOUNT, "app")
    with pytest.raises(InvalidParameter) as caught:
        await repos.list_tags(resource)
    assert caught.value.message == (
        "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'"
    )
    with pytest.raises(InvalidParameter):
        await repos.tag_resource(resource, tags(1))
    with pytest.raises(InvalidParameter):
        await repos.untag_resource(resource, ["k0"])


async def test_tags_of_unknown_repository(repos: RepositoryService) -> None:
    for call in (
        repos.list_tags(arn("nope")),
        repos.tag_resource(arn("nope"), tags(1)),
        repos.untag_resource(arn("nope"), ["k"]),
        repos.list_tags(arn("app", account=OTHER)),
    ):
        with pytest.raises(NameUnknown):
            await call


async def test_untag_invalid_key(repos: RepositoryService) -> None:
    await repos.create_repository(ACCOUNT, "app")
    with pytest.raises(InvalidTagParameter):
        await repos.untag_resource(arn("app"), ["k" * 129])


# -- account settings -------------------------------------------------------------------------


async def test_account_setting_defaults(repos: RepositoryService) -> None:
    assert await repos.get_account_setting(ACCOUNT, "BLOB_MOUNTING") == "DISABLED"
    assert await repos.get_account_setting(ACCOUNT, "REGISTRY_POLICY_SCOPE") == "V2"
    assert await repos.get_account_setting(ACCOUNT, "BASIC_SCAN_TYPE_VERSION") == "AWS_NATIVE"


async def test_put_account_setting(repos: RepositoryService) -> None:
    assert await repos.put_account_setting(ACCOUNT, "BLOB_MOUNTING", "ENABLED") == "ENABLED"
    assert await repos.get_account_setting(ACCOUNT, "BLOB_MOUNTING") == "ENABLED"
    await repos.put_account_setting(ACCOUNT, "BLOB_MOUNTING", "DISABLED")
    assert await repos.get_account_setting(ACCOUNT, "BLOB_MOUNTING") == "DISABLED"
    await repos.put_account_setting(ACCOUNT, "REGISTRY_POLICY_SCOPE", "V1")
    assert await repos.get_account_setting(ACCOUNT, "REGISTRY_POLICY_SCOPE") == "V1"


async def test_account_setting_errors(repos: RepositoryService) -> None:
    with pytest.raises(InvalidParameter, match="value"):
        await repos.put_account_setting(ACCOUNT, "BLOB_MOUNTING", "enabled")
    with pytest.raises(InvalidParameter, match="value"):
        await repos.put_account_setting(ACCOUNT, "REGISTRY_POLICY_SCOPE", "V3")
    with pytest.raises(InvalidParameter, match="name"):
        await repos.get_account_setting(ACCOUNT, "NO_SUCH_SETTING")
    with pytest.raises(InvalidParameter, match="registryId"):
        await repos.get_account_setting(OTHER, "BLOB_MOUNTING")


async def test_blob_mounting_follows_the_setting_and_encryption(repos: RepositoryService) -> None:
    source = await repos.create_repository(ACCOUNT, "source")
    target = await repos.create_repository(ACCOUNT, "target")
    kms = await repos.create_repository(
        ACCOUNT, "kms", RepositorySettings.checked(encryption={"encryptionType": "KMS"})
    )
    assert not await repos.blob_mounting_allowed(target, source)
    await repos.put_account_setting(ACCOUNT, "BLOB_MOUNTING", "ENABLED")
    assert await repos.blob_mounting_allowed(target, source)
    assert not await repos.blob_mounting_allowed(kms, source)


async def test_describe_registry_checks_the_account(repos: RepositoryService) -> None:
    assert await repos.registry(ACCOUNT) == ACCOUNT
    with pytest.raises(InvalidParameter):
        await repos.registry(OTHER)
