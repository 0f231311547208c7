"""The ECR repository operations on the wire: AWS JSON 1.1 through `AwsFront`, shapes and
`__type` errors as ECR answers them, and their two effects on `/v2/` (CREATE_ON_PUSH templates,
BLOB_MOUNTING).

The caller is a fixed principal of the account and every action is allowed: authentication and
authorization have tests of their own. Most tests speak JSON through httpx over ASGI; the last
few drive boto3 (its parsing, modeled exceptions and paginators) against uvicorn in a thread,
and move onto the shared `ecr` fixture when tests/ecr/conftest.py brings it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import boto3
import httpx
import pytest
from mypy_boto3_ecr import ECRClient
from starlette.requests import Request

from cargohold.domain.principal import Principal
from cargohold.http.awsfront import AwsFront
from cargohold.http.ecr import ecr_service
from cargohold.http.ecr_repositories import repository_handlers
from cargohold.http.oci import Access, OciFront
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.repositories import RepositoryService
from cargohold.service.templates import TemplateService
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.clock import Clock
from support.fixtures import LiveServers

pytestmark = pytest.mark.anyio

ACCOUNT = "123456789012"
OTHER = "210987654321"
REGION = "us-east-1"
PUBLIC_URL = "http://registry.example:5000"
HOST = "registry.example:5000"
TARGET = "AmazonEC2ContainerRegistry_V20150921."
PRINCIPAL = Principal(account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", principal_id=ACCOUNT)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class FixedPrincipal:
    """Authenticates every ECR call as the account's root."""

    async def authenticate(
        self, request: Request, body: bytes = b"", *, service: str = "ecr"
    ) -> Principal:
        return PRINCIPAL

    def registry_id(self, request: Request, principal: Principal) -> str:
        return principal.account_id

    async def authorize(self, request: Request, principal: Principal, access: Access) -> None:
        return None

    def challenge(self) -> str:
        return 'Basic realm="test",service="ecr.amazonaws.com"'


async def allow(
    principal: Principal, action: str, resource: str, context: Mapping[str, Any], **record: Any
) -> None:
    return None


class Fronts:
    """`/v2/…` to the OCI front, everything else to the ECR front, as the application routes."""

    def __init__(self, ecr: AwsFront, oci: OciFront) -> None:
        self.ecr = ecr
        self.oci = oci

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        path: str = scope["path"]
        front = self.oci if path == "/v2" or path.startswith("/v2/") else self.ecr
        response = await front(request)
        await response(scope, receive, send)


@dataclass
class Api:
    http: httpx.AsyncClient

    async def raw(self, operation: str, params: Mapping[str, Any]) -> httpx.Response:
        return await self.http.post(
            "/",
            json=dict(params),
            headers={
                "X-Amz-Target": TARGET + operation,
                "Content-Type": "application/x-amz-json-1.1",
            },
        )

    async def ok(self, operation: str, **params: Any) -> dict[str, Any]:
        response = await self.raw(operation, params)
        assert response.status_code == 200, response.text
        assert response.headers["x-amzn-RequestId"]
        body: dict[str, Any] = response.json()
        return body

    async def fails(self, operation: str, aws_type: str, **params: Any) -> str:
        """The error's message, once it is the `__type` expected with HTTP 400."""
        response = await self.raw(operation, params)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["__type"] == aws_type, body
        message: str = body["message"]
        return message


async def build(data: Path, public_url: str) -> tuple[Fronts, MetadataStore]:
    """Both fronts over one SQLite store in `data`, wired as the application wires them."""
    url = f"sqlite:///{data / 'metadata.db'}"
    await anyio.to_thread.run_sync(database.upgrade, url)
    store = MetadataStore.from_url(url)
    async with store.write() as tx:
        await tx.registries.ensure_registry(ACCOUNT, REGION, 1.0)
    clock = Clock()
    repos = RepositoryService(store, clock, region=REGION)
    templates = TemplateService(store, clock)
    storage = FilesystemDriver(data / "storage")
    content = ContentService(
        store, storage, clock, registry_id=ACCOUNT, rules=repos, templates=templates
    )
    oci = OciFront(content, UploadService(store, storage, clock), storage, FixedPrincipal())
    ecr = AwsFront(
        [ecr_service(repository_handlers(repos, templates, public_url=public_url))],
        FixedPrincipal(),
        allow,
        region=REGION,
    )
    return Fronts(ecr, oci), store


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    fronts, store = await build(tmp_path, PUBLIC_URL)
    transport = httpx.ASGITransport(app=fronts)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield Api(http)
    finally:
        await store.close()


def arn(name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


def tags(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": str(i)} for i in range(count)]


# -- CreateRepository -------------------------------------------------------------------------


async def test_create_repository_answers_the_repository_structure(api: Api) -> None:
    body = await api.ok("CreateRepository", repositoryName="team/app")
    repository = body["repository"]
    created_at = repository.pop("createdAt")
    assert isinstance(created_at, float) and created_at > 1_700_000_000
    assert repository == {
        "repositoryArn": arn("team/app"),
        "registryId": ACCOUNT,
        "repositoryName": "team/app",
        "repositoryUri": f"{HOST}/team/app",
        "imageTagMutability": "MUTABLE",
        "imageScanningConfiguration": {"scanOnPush": False},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    }


async def test_create_repository_with_every_setting(api: Api) -> None:
    filters = [{"filterType": "WILDCARD", "filter": "release-*"}]
    kms = {"encryptionType": "KMS", "kmsKey": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc"}
    body = await api.ok(
        "CreateRepository",
        repositoryName="app",
        tags=[{"Key": "team", "Value": "platform"}],
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=filters,
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration=kms,
    )
    repository = body["repository"]
    assert repository["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"
    assert repository["imageTagMutabilityExclusionFilters"] == filters
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["encryptionConfiguration"] == kms
    listed = await api.ok("ListTagsForResource", resourceArn=arn("app"))
    assert listed == {"tags": [{"Key": "team", "Value": "platform"}]}
    described = await api.ok("DescribeRepositories", repositoryNames=["app"])
    assert described["repositories"] == [repository]


async def test_repository_already_exists(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app")
    message = await api.fails(
        "CreateRepository", "RepositoryAlreadyExistsException", repositoryName="app"
    )
    assert message == (
        f"The repository with name 'app' already exists in the registry with id '{ACCOUNT}'"
    )


async def test_create_repository_tag_errors(api: Api) -> None:
    message = await api.fails(
        "CreateRepository",
        "InvalidTagParameterException",
        repositoryName="app",
        tags=[{"Key": "k" * 129, "Value": "v"}],
    )
    assert "Tag keys can have a maximum character length of 128 characters" in message
    await api.fails(
        "CreateRepository",
        "InvalidTagParameterException",
        repositoryName="app",
        tags=[{"Key": "k", "Value": "v" * 257}],
    )
    message = await api.fails(
        "CreateRepository", "TooManyTagsException", repositoryName="app", tags=tags(51)
    )
    assert message.endswith("The maximum number of tags that can be applied to a repository is 50.")
    await api.fails("DescribeRepositories", "RepositoryNotFoundException", repositoryNames=["app"])


async def test_create_repository_parameter_errors(api: Api) -> None:
    await api.fails(
        "CreateRepository",
        "InvalidParameterException",
        repositoryName="app",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
    )
    await api.fails(
        "CreateRepository",
        "InvalidParameterException",
        repositoryName="app",
        encryptionConfiguration={"encryptionType": "AES256", "kmsKey": "key"},
    )
    # What botocore's model states is checked by the front; CreateRepository does not list
    # ValidationException, so ECR names the first fault as InvalidParameterException.
    message = await api.fails(
        "CreateRepository",
        "InvalidParameterException",
        repositoryName="App",
        imageTagMutability="X",
    )
    assert message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy "
        r"regular expression '[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
        r"(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*''"
    )
    message = await api.fails(
        "CreateRepository",
        "InvalidParameterException",
        repositoryName="app",
        imageTagMutability="X",
    )
    assert message == (
        "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must "
        "satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, "
        "MUTABLE_WITH_EXCLUSION]'"
    )


# -- DeleteRepository -------------------------------------------------------------------------


async def push_blob(api: Api, name: str, content: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    response = await api.http.post(f"/v2/{name}/blobs/uploads/?digest={digest}", content=content)
    assert response.status_code == 201, response.text
    return digest


async def push_image(api: Api, name: str, tag: str = "1.0") -> None:
    config = await push_blob(api, name, b"{}")
    layer = await push_blob(api, name, b"layer")
    manifest = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}",'
        '"size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",'
        f'"digest":"{layer}","size":5}}]}}'
    )
    response = await api.http.put(
        f"/v2/{name}/manifests/{tag}",
        content=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text


async def test_delete_repository(api: Api) -> None:
    created = (await api.ok("CreateRepository", repositoryName="app"))["repository"]
    deleted = await api.ok("DeleteRepository", repositoryName="app")
    assert deleted == {"repository": created}
    message = await api.fails(
        "DeleteRepository", "RepositoryNotFoundException", repositoryName="app"
    )
    assert message == (
        f"The repository with name 'app' does not exist in the registry with id '{ACCOUNT}'"
    )


async def test_delete_repository_with_images_needs_force(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app")
    await push_image(api, "app")
    message = await api.fails(
        "DeleteRepository", "RepositoryNotEmptyException", repositoryName="app"
    )
    assert message == (
        f"The repository with name 'app' in registry with id '{ACCOUNT}' cannot be deleted "
        "because it still contains images"
    )
    await api.ok("DeleteRepository", repositoryName="app", force=True)
    await api.fails("DescribeRepositories", "RepositoryNotFoundException", repositoryNames=["app"])
    pulled = await api.http.get("/v2/app/manifests/1.0")
    assert pulled.status_code == 404


# -- DescribeRepositories ---------------------------------------------------------------------


async def test_describe_repositories_pages_with_opaque_tokens(api: Api) -> None:
    names = [f"repo-{i}" for i in range(5)]
    for name in names:
        await api.ok("CreateRepository", repositoryName=name)
    first = await api.ok("DescribeRepositories", maxResults=2)
    assert [r["repositoryName"] for r in first["repositories"]] == names[:2]
    second = await api.ok("DescribeRepositories", maxResults=2, nextToken=first["nextToken"])
    third = await api.ok("DescribeRepositories", maxResults=2, nextToken=second["nextToken"])
    assert [r["repositoryName"] for r in second["repositories"]] == names[2:4]
    assert [r["repositoryName"] for r in third["repositories"]] == names[4:]
    assert "nextToken" not in third
    everything = await api.ok("DescribeRepositories")
    assert len(everything["repositories"]) == 5 and "nextToken" not in everything


async def test_describe_repositories_errors(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app")
    message = await api.fails(
        "DescribeRepositories", "RepositoryNotFoundException", repositoryNames=["app", "gone"]
    )
    assert message == (
        f"The repository with name 'gone' does not exist in the registry with id '{ACCOUNT}'"
    )
    await api.fails("DescribeRepositories", "InvalidParameterException", nextToken="not-a-token")
    await api.fails(
        "DescribeRepositories", "InvalidParameterException", repositoryNames=["app"], maxResults=5
    )
    message = await api.fails("DescribeRepositories", "InvalidParameterException", maxResults=1001)
    assert message == (
        "Invalid parameter at 'maxResults' failed to satisfy constraint: "
        "'Member must have value less than or equal to 1000'"
    )
    await api.fails("DescribeRepositories", "InvalidParameterException", registryId=OTHER)


# -- PutImageTagMutability --------------------------------------------------------------------


async def test_put_image_tag_mutability_modes(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app")
    filters = [{"filterType": "WILDCARD", "filter": "latest"}]
    for mode in ("IMMUTABLE", "MUTABLE"):
        body = await api.ok("PutImageTagMutability", repositoryName="app", imageTagMutability=mode)
        assert body == {"registryId": ACCOUNT, "repositoryName": "app", "imageTagMutability": mode}
    for mode in ("IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"):
        body = await api.ok(
            "PutImageTagMutability",
            repositoryName="app",
            imageTagMutability=mode,
            imageTagMutabilityExclusionFilters=filters,
        )
        assert body["imageTagMutabilityExclusionFilters"] == filters
    described = await api.ok("DescribeRepositories", repositoryNames=["app"])
    assert described["repositories"][0]["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"


async def test_immutable_tags_hold_on_v2_with_exclusions(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app")
    await api.ok(
        "PutImageTagMutability",
        repositoryName="app",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )
    await push_image(api, "app", "1.0")
    await push_image(api, "app", "latest")
    other = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}'
    )
    headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
    moved = await api.http.put("/v2/app/manifests/latest", content=other, headers=headers)
    assert moved.status_code == 201
    refused = await api.http.put("/v2/app/manifests/1.0", content=other, headers=headers)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "TAG_INVALID"


async def test_put_image_tag_mutability_errors(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app")
    await api.fails(
        "PutImageTagMutability",
        "InvalidParameterException",
        repositoryName="app",
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
    )
    await api.fails(
        "PutImageTagMutability",
        "InvalidParameterException",
        repositoryName="app",
        imageTagMutability="IMMUTABLE",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "x"}],
    )
    await api.fails(
        "PutImageTagMutability",
        "InvalidParameterException",
        repositoryName="app",
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "a/b"}],
    )
    await api.fails(
        "PutImageTagMutability",
        "RepositoryNotFoundException",
        repositoryName="gone",
        imageTagMutability="IMMUTABLE",
    )


# -- DescribeRegistry -------------------------------------------------------------------------


async def test_describe_registry(api: Api) -> None:
    assert await api.ok("DescribeRegistry") == {
        "registryId": ACCOUNT,
        "replicationConfiguration": {"rules": []},
    }


# -- resource tags ----------------------------------------------------------------------------


async def test_tag_untag_list(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app", tags=[{"Key": "a", "Value": "1"}])
    assert await api.ok("TagResource", resourceArn=arn("app"), tags=tags(2)) == {}
    listed = await api.ok("ListTagsForResource", resourceArn=arn("app"))
    assert listed["tags"] == [
        {"Key": "a", "Value": "1"},
        {"Key": "k0", "Value": "0"},
        {"Key": "k1", "Value": "1"},
    ]
    assert await api.ok("UntagResource", resourceArn=arn("app"), tagKeys=["a", "k1"]) == {}
    listed = await api.ok("ListTagsForResource", resourceArn=arn("app"))
    assert listed["tags"] == [{"Key": "k0", "Value": "0"}]


async def test_tag_errors(api: Api) -> None:
    await api.ok("CreateRepository", repositoryName="app", tags=tags(49))
    message = await api.fails(
        "TagResource", "TooManyTagsException", resourceArn=arn("app"), tags=tags(2, "n")
    )
    assert "is 50" in message
    await api.fails(
        "TagResource",
        "InvalidTagParameterException",
        resourceArn=arn("app"),
        tags=[{"Key": "aws:reserved", "Value": "x"}],
    )
    await api.fails(
        "UntagResource", "InvalidTagParameterException", resourceArn=arn("app"), tagKeys=[""]
    )
    cases: list[tuple[str, dict[str, Any]]] = [
        ("TagResource", {"tags": tags(1)}),
        ("UntagResource", {"tagKeys": ["k0"]}),
        ("ListTagsForResource", {}),
    ]
    for operation, params in cases:
        message = await api.fails(
            operation, "InvalidParameterException", resourceArn="arn:aws:s3:::bucket", **params
        )
        assert message == (
            "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'"
        )
        message = await api.fails(
            operation, "RepositoryNotFoundException", resourceArn=arn("gone"), **params
        )
        assert "'gone' does not exist" in message


# -- account settings -------------------------------------------------------------------------


async def test_account_settings(api: Api) -> None:
    defaults = {
        "BASIC_SCAN_TYPE_VERSION": "AWS_NATIVE",
        "REGISTRY_POLICY_SCOPE": "V2",
        "BLOB_MOUNTING": "DISABLED",
    }
    for name, value in defaults.items():
        assert await api.ok("GetAccountSetting", name=name) == {"name": name, "value": value}
    put = await api.ok("PutAccountSetting", name="BLOB_MOUNTING", value="ENABLED")
    assert put == {"name": "BLOB_MOUNTING", "value": "ENABLED"}
    got = await api.ok("GetAccountSetting", name="BLOB_MOUNTING")
    assert got == {"name": "BLOB_MOUNTING", "value": "ENABLED"}


async def test_account_setting_errors(api: Api) -> None:
    message = await api.fails("GetAccountSetting", "ValidationException", name="NOPE")
    assert "Member must satisfy enum value set" in message
    await api.fails("PutAccountSetting", "ValidationException", name="NOPE", value="ENABLED")
    message = await api.fails(
        "PutAccountSetting", "InvalidParameterException", name="BLOB_MOUNTING", value="ON"
    )
    assert "ENABLED, DISABLED" in message
    await api.fails(
        "PutAccountSetting", "InvalidParameterException", name="BASIC_SCAN_TYPE_VERSION", value="X"
    )


# -- repository creation templates ------------------------------------------------------------


TEMPLATE: dict[str, Any] = {
    "description": "team images",
    "encryptionConfiguration": {"encryptionType": "AES256"},
    "resourceTags": [{"Key": "owner", "Value": "team"}],
    "imageTagMutability": "IMMUTABLE",
    "repositoryPolicy": (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"ecr:BatchGetImage"}]}'
    ),
    "lifecyclePolicy": '{"rules":[]}',
    "appliedFor": ["CREATE_ON_PUSH"],
    "customRoleArn": f"arn:aws:iam::{ACCOUNT}:role/templates",
}


async def test_template_lifecycle(api: Api) -> None:
    created = await api.ok("CreateRepositoryCreationTemplate", prefix="team", **TEMPLATE)
    assert created["registryId"] == ACCOUNT
    template = created["repositoryCreationTemplate"]
    assert template["createdAt"] == template["updatedAt"]
    assert {k: v for k, v in template.items() if k not in ("createdAt", "updatedAt")} == {
        "prefix": "team",
        **TEMPLATE,
    }
    updated = await api.ok("UpdateRepositoryCreationTemplate", prefix="team", description="changed")
    changed = updated["repositoryCreationTemplate"]
    assert changed["description"] == "changed"
    assert changed["imageTagMutability"] == "IMMUTABLE"
    assert changed["updatedAt"] > changed["createdAt"]
    described = await api.ok("DescribeRepositoryCreationTemplates", prefixes=["team"])
    assert described["repositoryCreationTemplates"] == [changed]
    deleted = await api.ok("DeleteRepositoryCreationTemplate", prefix="team")
    assert deleted["repositoryCreationTemplate"] == changed
    empty = await api.ok("DescribeRepositoryCreationTemplates")
    assert empty == {"registryId": ACCOUNT, "repositoryCreationTemplates": []}


async def test_template_errors(api: Api) -> None:
    await api.ok("CreateRepositoryCreationTemplate", prefix="ROOT", appliedFor=["REPLICATION"])
    message = await api.fails(
        "CreateRepositoryCreationTemplate",
        "TemplateAlreadyExistsException",
        prefix="ROOT",
        appliedFor=["CREATE_ON_PUSH"],
    )
    assert message == (
        "The repository creation template with the prefix 'ROOT' already exists in the "
        f"registry with id '{ACCOUNT}'"
    )
    for operation, params in [
        ("UpdateRepositoryCreationTemplate", {"description": "x"}),
        ("DeleteRepositoryCreationTemplate", {}),
    ]:
        message = await api.fails(operation, "TemplateNotFoundException", prefix="gone", **params)
        assert message == (
            "The repository creation template with the prefix 'gone' does not exist in the "
            f"registry with id '{ACCOUNT}'"
        )
    await api.fails(
        "CreateRepositoryCreationTemplate", "ValidationException", prefix="team", appliedFor=["X"]
    )
    await api.fails("CreateRepositoryCreationTemplate", "ValidationException", prefix="team")
    await api.fails(
        "CreateRepositoryCreationTemplate",
        "InvalidParameterException",
        prefix="team",
        appliedFor=["REPLICATION"],
        customRoleArn="role",
    )
    await api.fails(
        "CreateRepositoryCreationTemplate",
        "TooManyTagsException",
        prefix="team",
        appliedFor=["REPLICATION"],
        resourceTags=tags(51),
    )


async def test_describe_templates_pages(api: Api) -> None:
    prefixes = ["a", "b", "c", "ROOT"]
    for prefix in prefixes:
        await api.ok("CreateRepositoryCreationTemplate", prefix=prefix, appliedFor=["REPLICATION"])
    seen: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"maxResults": 3}
        if token is not None:
            params["nextToken"] = token
        page = await api.ok("DescribeRepositoryCreationTemplates", **params)
        seen += [t["prefix"] for t in page["repositoryCreationTemplates"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == sorted(prefixes)
    await api.fails(
        "DescribeRepositoryCreationTemplates", "InvalidParameterException", nextToken="!"
    )


# -- CREATE_ON_PUSH and BLOB_MOUNTING on /v2/ -------------------------------------------------


async def test_push_to_a_missing_repository_is_name_unknown(api: Api) -> None:
    response = await api.http.post("/v2/app/blobs/uploads/")
    assert response.status_code == 404
    error = response.json()["errors"][0]
    assert error["code"] == "NAME_UNKNOWN"
    assert error["message"] == (
        f"The repository with name 'app' does not exist in the registry with id '{ACCOUNT}'"
    )


async def test_create_on_push_uses_the_matching_template(api: Api) -> None:
    await api.ok("CreateRepositoryCreationTemplate", prefix="team", **TEMPLATE)
    # Outside the template's namespace a push still finds no repository.
    refused = await api.http.post("/v2/other/app/blobs/uploads/")
    assert refused.status_code == 404
    await push_image(api, "team/app")
    described = await api.ok("DescribeRepositories", repositoryNames=["team/app"])
    repository = described["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["encryptionConfiguration"] == {"encryptionType": "AES256"}
    listed = await api.ok("ListTagsForResource", resourceArn=arn("team/app"))
    assert listed["tags"] == [{"Key": "owner", "Value": "team"}]
    await api.fails(
        "DescribeRepositories", "RepositoryNotFoundException", repositoryNames=["other/app"]
    )


async def test_template_not_applied_for_create_on_push_creates_nothing(api: Api) -> None:
    await api.ok(
        "CreateRepositoryCreationTemplate",
        prefix="ROOT",
        appliedFor=["REPLICATION", "PULL_THROUGH_CACHE"],
    )
    response = await api.http.post("/v2/app/blobs/uploads/")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


async def test_blob_mounting_follows_the_account_setting(api: Api) -> None:
    for name in ("source", "target"):
        await api.ok("CreateRepository", repositoryName=name)
    digest = await push_blob(api, "source", b"shared layer")
    mount = f"/v2/target/blobs/uploads/?mount={digest}&from=source"
    disabled = await api.http.post(mount)
    assert disabled.status_code == 202
    assert (await api.http.head(f"/v2/target/blobs/{digest}")).status_code == 404
    await api.ok("PutAccountSetting", name="BLOB_MOUNTING", value="ENABLED")
    enabled = await api.http.post(mount)
    assert enabled.status_code == 201
    assert enabled.headers["Docker-Content-Digest"] == digest
    assert (await api.http.head(f"/v2/target/blobs/{digest}")).status_code == 200


async def test_blob_mounting_needs_identical_encryption(api: Api) -> None:
    await api.ok("PutAccountSetting", name="BLOB_MOUNTING", value="ENABLED")
    await api.ok("CreateRepository", repositoryName="source")
    await api.ok(
        "CreateRepository",
        repositoryName="target",
        encryptionConfiguration={"encryptionType": "KMS"},
    )
    digest = await push_blob(api, "source", b"shared layer")
    response = await api.http.post(f"/v2/target/blobs/uploads/?mount={digest}&from=source")
    assert response.status_code == 202


# -- through boto3 against a live server ------------------------------------------------------
# Until the shared `ecr` fixture of tests/ecr/conftest.py lands: uvicorn in a thread, serving the
# same fronts, so boto3's own parsing, modeled exceptions and paginators are exercised.


class LiveApp:
    """`build`'s fronts, made at start-up inside the server's event loop."""

    def __init__(self, data: Path, public_url: str) -> None:
        self.data = data
        self.public_url = public_url
        self.fronts: Fronts | None = None
        self.store: MetadataStore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.fronts, self.store = await build(self.data, self.public_url)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if self.store is not None:
                        await self.store.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.fronts is not None
        await self.fronts(scope, receive, send)


@pytest.fixture(scope="module")
def live_url(live_servers: LiveServers) -> str:
    return live_servers.in_thread("repositories-api", LiveApp).url


@pytest.fixture(scope="module")
def boto_ecr(live_url: str) -> ECRClient:
    client: ECRClient = boto3.client(
        "ecr",
        endpoint_url=live_url,
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    return client


def test_boto3_repository_round_trip(boto_ecr: ECRClient, live_url: str) -> None:
    created = boto_ecr.create_repository(
        repositoryName="boto/app",
        tags=[{"Key": "team", "Value": "a"}],
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "dev-*"}],
    )["repository"]
    assert created["repositoryUri"] == f"{live_url.removeprefix('http://')}/boto/app"
    assert created["createdAt"].year >= 2023
    assert created["imageTagMutabilityExclusionFilters"] == [
        {"filterType": "WILDCARD", "filter": "dev-*"}
    ]
    with pytest.raises(boto_ecr.exceptions.RepositoryAlreadyExistsException):
        boto_ecr.create_repository(repositoryName="boto/app")
    tags = boto_ecr.list_tags_for_resource(resourceArn=created["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "a"}]
    with pytest.raises(boto_ecr.exceptions.InvalidParameterException):
        boto_ecr.list_tags_for_resource(resourceArn="arn:aws:sns:us-east-1:1:x")
    with pytest.raises(boto_ecr.exceptions.TooManyTagsException):
        boto_ecr.tag_resource(resourceArn=created["repositoryArn"], tags=tags_of(50, "x"))
    boto_ecr.delete_repository(repositoryName="boto/app")
    with pytest.raises(boto_ecr.exceptions.RepositoryNotFoundException):
        boto_ecr.describe_repositories(repositoryNames=["boto/app"])


def tags_of(count: int, prefix: str) -> list[Any]:
    return [{"Key": f"{prefix}{i}", "Value": ""} for i in range(count)]


def test_boto3_paginators(boto_ecr: ECRClient) -> None:
    names = [f"paged/repo-{i:02}" for i in range(7)]
    prefixes = [f"paged{i}" for i in range(5)]
    for name in names:
        boto_ecr.create_repository(repositoryName=name)
    for prefix in prefixes:
        boto_ecr.create_repository_creation_template(prefix=prefix, appliedFor=["REPLICATION"])
    try:
        pages = list(
            boto_ecr.get_paginator("describe_repositories").paginate(
                PaginationConfig={"PageSize": 3}
            )
        )
        assert len(pages) >= 3 and all(len(p["repositories"]) <= 3 for p in pages)
        assert all("nextToken" in p for p in pages[:-1]) and "nextToken" not in pages[-1]
        seen = [r["repositoryName"] for p in pages for r in p["repositories"]]
        assert [n for n in seen if n.startswith("paged/")] == names
        template_pages = list(
            boto_ecr.get_paginator("describe_repository_creation_templates").paginate(
                PaginationConfig={"PageSize": 2}
            )
        )
        assert len(template_pages) >= 3
        found = [t["prefix"] for p in template_pages for t in p["repositoryCreationTemplates"]]
        assert [f for f in found if f.startswith("paged")] == prefixes
    finally:
        for name in names:
            boto_ecr.delete_repository(repositoryName=name)
        for prefix in prefixes:
            boto_ecr.delete_repository_creation_template(prefix=prefix)


def test_boto3_templates_and_settings(boto_ecr: ECRClient) -> None:
    created = boto_ecr.create_repository_creation_template(
        prefix="ROOT", appliedFor=["CREATE_ON_PUSH"], description="everything"
    )["repositoryCreationTemplate"]
    assert created["createdAt"] == created["updatedAt"]
    with pytest.raises(boto_ecr.exceptions.TemplateAlreadyExistsException):
        boto_ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["REPLICATION"])
    boto_ecr.delete_repository_creation_template(prefix="ROOT")
    with pytest.raises(boto_ecr.exceptions.TemplateNotFoundException):
        boto_ecr.update_repository_creation_template(prefix="ROOT", description="x")
    assert boto_ecr.get_account_setting(name="BLOB_MOUNTING")["value"] == "DISABLED"
    assert boto_ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")["value"] == (
        "ENABLED"
    )
    with pytest.raises(boto_ecr.exceptions.ValidationException):
        boto_ecr.get_account_setting(name="NO_SUCH_SETTING")
    registry = boto_ecr.describe_registry()
    assert registry["registryId"] == ACCOUNT
    assert registry["replicationConfiguration"] == {"rules": []}
