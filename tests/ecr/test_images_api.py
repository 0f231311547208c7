"""ECR image and layer operations through boto3: shapes, paginators, every error as boto3 sees it,
presigned layer downloads that work without credentials, and the upload machinery shared with
`/v2/`.

Most tests drive the real application (a `cargohold serve` subprocess, SigV4 with the
administrator's key: the `ecr`/`ecr_server` fixtures of tests/ecr/conftest.py). Expiry needs a
clock the test can move, so one test runs the same handlers in an in-thread server whose services
read a test clock, every call authenticated as the account's root.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from mypy_boto3_ecr import ECRClient
from starlette.requests import Request
from starlette.responses import Response

from cargohold.domain.principal import Principal
from cargohold.http.awsfront import AwsFront
from cargohold.http.download import PREFIX, DownloadRoute, DownloadSigner, LayerUrls
from cargohold.http.ecr import ecr_service
from cargohold.http.ecr_images import image_handlers
from cargohold.http.ecr_repositories import repository_handlers
from cargohold.http.oci import OciFront
from cargohold.metadata import database
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.images import ImageService
from cargohold.service.layers import MIN_PART_SIZE, PART_SIZE, LayerService
from cargohold.service.repositories import RepositoryService
from cargohold.service.templates import TemplateService
from cargohold.service.uploads import UploadService
from cargohold.storage.filesystem import FilesystemDriver
from support.fixtures import LiveServers
from support.server import RegistryServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PRINCIPAL = Principal(account_id=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", principal_id=ACCOUNT)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Clock:
    """The time every service reads; tests move it to expire download URLs."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class FixedPrincipal:
    async def authenticate(
        self, request: Request, body: bytes = b"", *, service: str = "ecr"
    ) -> Principal:
        return PRINCIPAL

    async def authorize(self, principal: Principal, action: str, repository: str | None) -> None:
        return None

    def challenge(self) -> str:
        return 'Basic realm="test",service="ecr.amazonaws.com"'


async def allow(
    principal: Principal, action: str, resource: str, context: Mapping[str, Any], **record: Any
) -> None:
    return None


class App:
    """ECR at `/`, `/v2/` and `/_download/`, built at start-up inside the server's event loop."""

    def __init__(self, data: Path, clock: Clock, base_url: str) -> None:
        self.data = data
        self.clock = clock
        self.base_url = base_url
        self.routes: dict[str, Callable[[Request], Awaitable[Response]]] = {}
        self.store: MetadataStore | None = None

    async def start(self) -> None:
        url = f"sqlite:///{self.data / 'metadata.db'}"
        database.upgrade(url)
        store = self.store = MetadataStore.from_url(url)
        async with store.write() as tx:
            await tx.registries.ensure_registry(ACCOUNT, REGION, self.clock())
        storage = FilesystemDriver(self.data / "storage")
        repos = RepositoryService(store, self.clock, region=REGION)
        templates = TemplateService(store, self.clock)
        registry = ContentService(
            store, storage, self.clock, registry_id=ACCOUNT, rules=repos, templates=templates
        )
        uploads = UploadService(store, storage, self.clock)
        signer = DownloadSigner(b"k" * 32, self.base_url, self.clock)
        handlers = {
            **repository_handlers(repos, templates, public_url=self.base_url),
            **image_handlers(
                ImageService(registry, store),
                LayerService(store, uploads),
                LayerUrls(signer, storage, redirect=True),
            ),
        }
        self.routes = {
            "/v2": OciFront(registry, uploads, storage, FixedPrincipal()),
            PREFIX: DownloadRoute(signer, registry, storage),
            "/": AwsFront([ecr_service(handlers)], FixedPrincipal(), allow, region=REGION),
        }

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
        path: str = scope["path"]
        prefix = next(p for p in self.routes if path.startswith(p))
        response = await self.routes[prefix](Request(scope, receive))
        await response(scope, receive, send)


@dataclass
class Server:
    url: str
    clock: Clock


@pytest.fixture(scope="module")
def local_server(live_servers: LiveServers) -> Server:
    clock = Clock()
    served = live_servers.in_thread("images-api", lambda data, url: App(data, clock, url))
    return Server(served.url, clock)


@pytest.fixture(scope="module")
def local_ecr(local_server: Server) -> ECRClient:
    client: ECRClient = boto3.client(
        "ecr",
        endpoint_url=local_server.url,
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    )
    return client


_names = itertools.count()


@pytest.fixture
def repo(ecr: ECRClient) -> str:
    name = f"images/test-{next(_names)}"
    ecr.create_repository(repositoryName=name)
    return name


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> dict[str, Any]:
    return dict(exc.value.response["Error"])


def upload_layer(ecr: ECRClient, repo: str, *parts: bytes) -> str:
    """InitiateLayerUpload, one UploadLayerPart per part, CompleteLayerUpload."""
    started = ecr.initiate_layer_upload(repositoryName=repo)
    upload_id = started["uploadId"]
    offset = 0
    for part in parts:
        answer = ecr.upload_layer_part(
            repositoryName=repo,
            uploadId=upload_id,
            partFirstByte=offset,
            partLastByte=offset + len(part) - 1,
            layerPartBlob=part,
        )
        offset += len(part)
        assert answer["lastByteReceived"] == offset - 1
    data = b"".join(parts)
    done = ecr.complete_layer_upload(
        repositoryName=repo, uploadId=upload_id, layerDigests=[sha(data)]
    )
    assert done["layerDigest"] == sha(data)
    return sha(data)


def push_image(
    ecr: ECRClient, repo: str, seed: str, tag: str | None = None, **extra: Any
) -> tuple[str, str]:
    """Layers through the layer-upload API, then PutImage; (manifest text, digest)."""
    config = json.dumps({"seed": seed}).encode()
    layer = f"layer of {seed}".encode() * 20
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": CONFIG,
            "digest": upload_layer(ecr, repo, config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": LAYER, "digest": upload_layer(ecr, repo, layer), "size": len(layer)}
        ],
        **extra,
    }
    text = json.dumps(document)
    kwargs: dict[str, Any] = {"imageTag": tag} if tag else {}
    answer = ecr.put_image(repositoryName=repo, imageManifest=text, **kwargs)
    return text, answer["image"]["imageId"]["imageDigest"]


# -- the push and pull chain ----------------------------------------------------------------


def test_push_with_layer_api_pull_with_batch_get_and_presigned_download(
    ecr: ECRClient, repo: str, ecr_server: RegistryServer
) -> None:
    text, digest = push_image(ecr, repo, "chain", "1.0")
    assert digest == sha(text.encode())

    got = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "1.0"}])
    assert got["failures"] == []
    [pulled] = got["images"]
    assert pulled["imageId"] == {"imageDigest": digest, "imageTag": "1.0"}
    assert pulled["imageManifest"] == text
    assert pulled["imageManifestMediaType"] == OCI_MANIFEST
    assert pulled["registryId"] == ACCOUNT and pulled["repositoryName"] == repo

    manifest = json.loads(pulled["imageManifest"])
    for descriptor in [manifest["config"], *manifest["layers"]]:
        answer = ecr.get_download_url_for_layer(
            repositoryName=repo, layerDigest=descriptor["digest"]
        )
        assert answer["layerDigest"] == descriptor["digest"]
        url = answer["downloadUrl"]
        assert url.startswith(ecr_server.url + "/_download/")
        blob = httpx.get(url)  # no credentials of any kind
        assert blob.status_code == 200
        assert sha(blob.content) == descriptor["digest"]
        assert len(blob.content) == descriptor["size"]


def test_a_registry_id_names_the_registry_looked_in(local_ecr: ECRClient) -> None:
    # Authorization allows everything here, so the lookup itself answers.
    repo = f"images/registry-{next(_names)}"
    local_ecr.create_repository(repositoryName=repo)
    assert local_ecr.list_images(repositoryName=repo, registryId=ACCOUNT)["imageIds"] == []
    with pytest.raises(ClientError) as caught:
        local_ecr.describe_images(repositoryName=repo, registryId="999999999999")
    assert error_of(caught)["Code"] == "RepositoryNotFoundException"
    assert error_of(caught)["Message"] == (
        f"The repository with name '{repo}' does not exist in the registry with id '999999999999'"
    )


def test_a_download_url_stops_working_when_it_expires_or_is_altered(
    local_ecr: ECRClient, local_server: Server
) -> None:
    ecr, server, repo = local_ecr, local_server, f"images/expiry-{next(_names)}"
    ecr.create_repository(repositoryName=repo)
    text, _ = push_image(ecr, repo, "expiry", "v1")
    layer = json.loads(text)["layers"][0]["digest"]
    config = json.loads(text)["config"]["digest"]
    url = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=layer)["downloadUrl"]
    assert httpx.head(url).status_code == 200
    assert httpx.get(url.replace(layer, config)).status_code == 403
    assert httpx.get(url.replace(repo, repo + "x")).status_code == 403
    assert httpx.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")).status_code == 403
    assert httpx.get(url.split("?")[0]).status_code == 403
    start = server.clock.now
    try:
        server.clock.now = start + 3599
        assert httpx.get(url).status_code == 200
        server.clock.now = start + 3601
        expired = httpx.get(url)
        assert expired.status_code == 403
        assert "Request has expired" in expired.text
    finally:
        server.clock.now = start


def test_get_download_url_errors(ecr: ECRClient, repo: str) -> None:
    with pytest.raises(ClientError) as caught:
        ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=sha(b"absent"))
    assert error_of(caught)["Code"] == "LayersNotFoundException"
    loose = upload_layer(ecr, repo, b"a layer no image uses")
    with pytest.raises(ClientError) as caught:
        ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=loose)
    assert error_of(caught)["Code"] == "LayerInaccessibleException"
    assert error_of(caught)["Message"].startswith("The specified layer is not available")


# -- listings and paginators ----------------------------------------------------------------


def test_list_and_describe_images_with_paginators(ecr: ECRClient, repo: str) -> None:
    texts, pushed = zip(*(push_image(ecr, repo, f"img{n}", f"t{n}") for n in range(5)), strict=True)
    _, untagged = push_image(ecr, repo, "untagged")
    ecr.put_image(repositoryName=repo, imageManifest=texts[0], imageTag="second-tag")

    ids = [
        image_id
        for page in ecr.get_paginator("list_images").paginate(
            repositoryName=repo, PaginationConfig={"PageSize": 2}
        )
        for image_id in page["imageIds"]
    ]
    expected_ids = [{"imageDigest": pushed[0], "imageTag": "second-tag"}] + [
        {"imageDigest": d, "imageTag": f"t{n}"} for n, d in enumerate(pushed)
    ]
    expected_ids.append({"imageDigest": untagged})
    assert sorted(ids, key=json.dumps) == sorted(expected_ids, key=json.dumps)
    assert len(ids) == 7

    untagged_only = ecr.list_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})
    assert untagged_only["imageIds"] == [{"imageDigest": untagged}]
    tagged = ecr.list_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})["imageIds"]
    assert len(tagged) == 6

    details = [
        detail
        for page in ecr.get_paginator("describe_images").paginate(
            repositoryName=repo, PaginationConfig={"PageSize": 4}
        )
        for detail in page["imageDetails"]
    ]
    assert [d["imageDigest"] for d in details] == [*pushed, untagged]
    first = details[0]
    assert first["imageTags"] == ["second-tag", "t0"]
    assert first["registryId"] == ACCOUNT and first["repositoryName"] == repo
    assert first["imageManifestMediaType"] == OCI_MANIFEST
    assert first["artifactMediaType"] == CONFIG
    assert first["imageSizeInBytes"] == len(b"layer of img0" * 20)
    assert abs(first["imagePushedAt"].timestamp() - time.time()) < 600
    assert "imageTags" not in details[-1]

    page = ecr.list_images(repositoryName=repo, maxResults=3)
    assert len(page["imageIds"]) == 3 and page["nextToken"]


def test_describe_images_by_id_and_pull_time(ecr: ECRClient, repo: str) -> None:
    _, digest = push_image(ecr, repo, "pulled", "v1")
    [detail] = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])[
        "imageDetails"
    ]
    assert "lastRecordedPullTime" not in detail
    ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    [detail] = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v1"}])[
        "imageDetails"
    ]
    assert abs(detail["lastRecordedPullTime"].timestamp() - time.time()) < 600

    with pytest.raises(ClientError) as caught:
        ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "missing"}])
    assert error_of(caught)["Code"] == "ImageNotFoundException"
    assert error_of(caught)["Message"] == (
        "The image with imageId {imageDigest:'null', imageTag:'missing'} does not exist within "
        f"the repository with name '{repo}' in the registry with id '{ACCOUNT}'"
    )


def test_invalid_next_token_and_unknown_registry(ecr: ECRClient, repo: str) -> None:
    with pytest.raises(ClientError) as caught:
        ecr.list_images(repositoryName=repo, nextToken="not-a-token")
    assert error_of(caught)["Code"] == "InvalidParameterException"
    assert error_of(caught)["Message"] == (
        "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"
    )
    # Another account's registry: refused before anything is looked up (no policy grants it).
    with pytest.raises(ClientError) as caught:
        ecr.describe_images(repositoryName=repo, registryId="999999999999")
    assert error_of(caught)["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as caught:
        ecr.list_images(repositoryName="images/never-created")
    assert error_of(caught)["Code"] == "RepositoryNotFoundException"


# -- BatchGetImage / BatchDeleteImage -------------------------------------------------------


def test_batch_get_image_failures_and_accepted_media_types(ecr: ECRClient, repo: str) -> None:
    _, a = push_image(ecr, repo, "a", "a")
    _, b = push_image(ecr, repo, "b", "b")
    answer = ecr.batch_get_image(
        repositoryName=repo,
        imageIds=[
            {"imageDigest": a},
            {"imageTag": "nope"},
            {},
            {"imageDigest": "sha256:123"},
            {"imageDigest": a, "imageTag": "b"},
        ],
    )
    assert [i["imageId"] for i in answer["images"]] == [{"imageDigest": a}]
    assert [(f["imageId"], f["failureCode"]) for f in answer["failures"]] == [
        ({"imageTag": "nope"}, "ImageNotFound"),
        ({}, "MissingDigestAndTag"),
        ({"imageDigest": "sha256:123"}, "InvalidImageDigest"),
        ({"imageDigest": a, "imageTag": "b"}, "ImageTagDoesNotMatchDigest"),
    ]
    assert answer["failures"][0]["failureReason"] == "Requested image not found"
    refused = ecr.batch_get_image(
        repositoryName=repo, imageIds=[{"imageTag": "b"}], acceptedMediaTypes=[DOCKER_MANIFEST]
    )
    assert refused["images"] == []
    assert refused["failures"][0]["failureCode"] == "ImageNotFound"
    served = ecr.batch_get_image(
        repositoryName=repo, imageIds=[{"imageTag": "b"}], acceptedMediaTypes=[OCI_MANIFEST]
    )
    assert served["images"][0]["imageId"]["imageDigest"] == b


def test_batch_delete_image_tag_and_digest_semantics(ecr: ECRClient, repo: str) -> None:
    text, a = push_image(ecr, repo, "a", "first")
    ecr.put_image(repositoryName=repo, imageManifest=text, imageTag="second")
    _, b = push_image(ecr, repo, "b", "other")

    answer = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "first"}])
    assert answer["imageIds"] == [{"imageDigest": a, "imageTag": "first"}]
    assert answer["failures"] == []
    listed = ecr.list_images(repositoryName=repo)["imageIds"]
    assert {"imageDigest": a, "imageTag": "second"} in listed

    # The image's last tag: the image goes too.
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "second"}])
    digests = {i["imageDigest"] for i in ecr.list_images(repositoryName=repo)["imageIds"]}
    assert digests == {b}

    answer = ecr.batch_delete_image(
        repositoryName=repo,
        imageIds=[{"imageDigest": b, "imageTag": "nope"}, {"imageDigest": a}, {}],
    )
    assert answer["imageIds"] == []
    assert [f["failureCode"] for f in answer["failures"]] == [
        "ImageNotFound",
        "ImageNotFound",
        "MissingDigestAndTag",
    ]
    push_image(ecr, repo, "c", "c")
    answer = ecr.batch_delete_image(
        repositoryName=repo, imageIds=[{"imageDigest": b, "imageTag": "c"}]
    )
    assert answer["failures"][0]["failureCode"] == "ImageTagDoesNotMatchDigest"
    answer = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": b}])
    assert answer["imageIds"] == [{"imageDigest": b, "imageTag": "other"}]


def test_batch_delete_image_refuses_a_child_of_an_index(ecr: ECRClient, repo: str) -> None:
    child_text, child = push_image(ecr, repo, "child")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": child, "size": len(child_text.encode())}
            ],
        }
    )
    index_digest = ecr.put_image(repositoryName=repo, imageManifest=index, imageTag="multi")[
        "image"
    ]["imageId"]["imageDigest"]
    answer = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": child}])
    assert answer["imageIds"] == []
    [failure] = answer["failures"]
    assert failure["failureCode"] == "ImageReferencedByManifestList"
    assert failure["failureReason"] == (
        f"Requested image referenced by manifest list: [{index_digest}]"
    )


# -- PutImage errors ------------------------------------------------------------------------


def put_error(ecr: ECRClient, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        ecr.put_image(**params)
    return error_of(caught)


def test_put_image_errors(ecr: ECRClient, repo: str) -> None:
    text, digest = push_image(ecr, repo, "a", "v1")

    error = put_error(ecr, repositoryName=repo, imageManifest=text, imageTag="v1")
    assert error["Code"] == "ImageAlreadyExistsException"
    assert error["Message"] == (
        f"Image with digest '{digest}' and tag 'v1' already exists in the repository with name "
        f"'{repo}' in registry with id '{ACCOUNT}'"
    )

    error = put_error(
        ecr, repositoryName=repo, imageManifest=text, imageTag="v2", imageDigest=sha(b"x")
    )
    assert error["Code"] == "ImageDigestDoesNotMatchException"

    missing = json.loads(text)
    missing["layers"][0]["digest"] = sha(b"never uploaded")
    error = put_error(ecr, repositoryName=repo, imageManifest=json.dumps(missing), imageTag="m")
    assert error["Code"] == "LayersNotFoundException"
    assert sha(b"never uploaded") in error["Message"]

    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha(b"nothing"), "size": 7}],
        }
    )
    error = put_error(ecr, repositoryName=repo, imageManifest=index, imageTag="i")
    assert error["Code"] == "ReferencedImagesNotFoundException"
    assert error["Message"].startswith(f"Images with digests '[{sha(b'nothing')}]'")

    error = put_error(ecr, repositoryName=repo, imageManifest="{not json", imageTag="bad")
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"] == (
        "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"
    )

    error = put_error(ecr, repositoryName="images/never-created", imageManifest=text)
    assert error["Code"] == "RepositoryNotFoundException"


def test_put_image_immutable_tag(ecr: ECRClient) -> None:
    name = f"images/immutable-{next(_names)}"
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    push_image(ecr, name, "a", "release")
    second = json.loads(push_image(ecr, name, "b")[0])
    error = put_error(
        ecr, repositoryName=name, imageManifest=json.dumps(second), imageTag="release"
    )
    assert error["Code"] == "ImageTagAlreadyExistsException"


# -- the layer-upload API -------------------------------------------------------------------


def test_initiate_and_multi_part_upload(ecr: ECRClient, repo: str) -> None:
    started = ecr.initiate_layer_upload(repositoryName=repo)
    assert started["partSize"] == PART_SIZE
    big = bytes(range(256)) * (MIN_PART_SIZE // 256)
    digest = upload_layer(ecr, repo, big, b"the last part may be small")
    [layer] = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[digest])[
        "layers"
    ]
    assert layer == {
        "layerDigest": digest,
        "layerAvailability": "AVAILABLE",
        "layerSize": len(big) + len(b"the last part may be small"),
    }


def test_upload_layer_part_errors(ecr: ECRClient, repo: str) -> None:
    upload_id = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=repo,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=9,
        layerPartBlob=b"0123456789",
    )
    with pytest.raises(ClientError) as caught:
        ecr.upload_layer_part(
            repositoryName=repo,
            uploadId=upload_id,
            partFirstByte=20,
            partLastByte=21,
            layerPartBlob=b"xx",
        )
    assert error_of(caught)["Code"] == "InvalidLayerPartException"
    body = caught.value.response
    assert body.get("lastValidByteReceived") == 9
    assert body.get("uploadId") == upload_id

    with pytest.raises(ClientError) as caught:
        ecr.upload_layer_part(
            repositoryName=repo,
            uploadId="00000000-0000-4000-8000-000000000000",
            partFirstByte=0,
            partLastByte=0,
            layerPartBlob=b"x",
        )
    assert error_of(caught)["Code"] == "UploadNotFoundException"


def complete_error(ecr: ECRClient, repo: str, upload_id: str, digest: str) -> str:
    with pytest.raises(ClientError) as caught:
        ecr.complete_layer_upload(repositoryName=repo, uploadId=upload_id, layerDigests=[digest])
    code: str = error_of(caught)["Code"]
    return code


def test_complete_layer_upload_errors(ecr: ECRClient, repo: str) -> None:
    empty = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    assert complete_error(ecr, repo, empty, sha(b"")) == "EmptyUploadException"

    def started(*parts: bytes) -> str:
        upload_id = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
        offset = 0
        for part in parts:
            ecr.upload_layer_part(
                repositoryName=repo,
                uploadId=upload_id,
                partFirstByte=offset,
                partLastByte=offset + len(part) - 1,
                layerPartBlob=part,
            )
            offset += len(part)
        return upload_id

    small = started(b"too small", b"tail")
    assert complete_error(ecr, repo, small, sha(b"too smalltail")) == "LayerPartTooSmallException"

    wrong = started(b"content")
    assert complete_error(ecr, repo, wrong, sha(b"not the content")) == "InvalidLayerException"

    existing = upload_layer(ecr, repo, b"uploaded once")
    again = started(b"uploaded once")
    assert complete_error(ecr, repo, again, existing) == "LayerAlreadyExistsException"

    unknown = "00000000-0000-4000-8000-000000000000"
    assert complete_error(ecr, repo, unknown, existing) == "UploadNotFoundException"


def test_batch_check_layer_availability(ecr: ECRClient, repo: str) -> None:
    text, _ = push_image(ecr, repo, "layers", "v1")
    layer = json.loads(text)["layers"][0]
    answer = ecr.batch_check_layer_availability(
        repositoryName=repo, layerDigests=[layer["digest"], sha(b"absent"), "sha256:xyz"]
    )
    assert answer["layers"] == [
        {
            "layerDigest": layer["digest"],
            "layerAvailability": "AVAILABLE",
            "layerSize": layer["size"],
            "mediaType": LAYER,
        },
        {"layerDigest": sha(b"absent"), "layerAvailability": "UNAVAILABLE"},
    ]
    assert [(f["layerDigest"], f["failureCode"]) for f in answer["failures"]] == [
        ("sha256:xyz", "InvalidLayerDigest")
    ]


# -- ListImageReferrers ---------------------------------------------------------------------


def test_list_image_referrers(ecr: ECRClient, repo: str) -> None:
    subject_text, subject = push_image(ecr, repo, "subject", "v1")
    empty = upload_layer(ecr, repo, b"{}")
    digests = []
    for n, kind in enumerate(
        ["application/vnd.sig", "application/vnd.sbom", "application/vnd.sig"]
    ):
        payload = upload_layer(ecr, repo, f"payload {n}".encode())
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": kind,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [
                {
                    "mediaType": "application/octet-stream",
                    "digest": payload,
                    "size": len(f"payload {n}"),
                }
            ],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": subject,
                "size": len(subject_text.encode()),
            },
            "annotations": {"n": str(n)},
        }
        text = json.dumps(document)
        ecr.put_image(repositoryName=repo, imageManifest=text)
        digests.append((sha(text.encode()), len(text.encode()), kind, str(n)))

    answer = ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": subject})
    assert answer["referrers"] == [
        {
            "digest": d,
            "mediaType": OCI_MANIFEST,
            "artifactType": kind,
            "size": size,
            "annotations": {"n": n},
            "artifactStatus": "ACTIVE",
        }
        for d, size, kind, n in sorted(digests)
    ]
    assert "nextToken" not in answer
    sbom = ecr.list_image_referrers(
        repositoryName=repo,
        subjectId={"imageDigest": subject},
        filter={"artifactTypes": ["application/vnd.sbom"]},
    )
    assert [r["artifactType"] for r in sbom["referrers"]] == ["application/vnd.sbom"]
    first = ecr.list_image_referrers(
        repositoryName=repo, subjectId={"imageDigest": subject}, maxResults=2
    )
    rest = ecr.list_image_referrers(
        repositoryName=repo,
        subjectId={"imageDigest": subject},
        maxResults=2,
        nextToken=first["nextToken"],
    )
    assert [r["digest"] for r in first["referrers"] + rest["referrers"]] == sorted(
        d for d, *_ in digests
    )
    # The subject itself records the relation.
    [detail] = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digests[0][0]}])[
        "imageDetails"
    ]
    assert detail["subjectManifestDigest"] == subject


# -- one upload machinery with /v2/ ---------------------------------------------------------


def test_an_upload_started_through_ecr_finishes_through_v2_and_back(
    ecr: ECRClient, repo: str, ecr_server: RegistryServer
) -> None:
    first, rest = b"started with UploadLayerPart, ", b"finished with a /v2/ PUT"
    upload_id = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=repo,
        uploadId=upload_id,
        partFirstByte=0,
        partLastByte=len(first) - 1,
        layerPartBlob=first,
    )
    with ecr_server.client() as v2:
        status = v2.get(f"/v2/{repo}/blobs/uploads/{upload_id}")
        assert status.status_code == 204
        assert status.headers["Range"] == f"0-{len(first) - 1}"
        done = v2.put(
            f"/v2/{repo}/blobs/uploads/{upload_id}",
            params={"digest": sha(first + rest)},
            content=rest,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text

        # And the other way: a /v2/ upload session continued with UploadLayerPart.
        started = v2.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202
        other_id = started.headers["Docker-Upload-UUID"]
    ecr.upload_layer_part(
        repositoryName=repo,
        uploadId=other_id,
        partFirstByte=0,
        partLastByte=2,
        layerPartBlob=b"abc",
    )
    ecr.complete_layer_upload(repositoryName=repo, uploadId=other_id, layerDigests=[sha(b"abc")])

    layers = ecr.batch_check_layer_availability(
        repositoryName=repo, layerDigests=[sha(first + rest), sha(b"abc")]
    )["layers"]
    assert [(x["layerAvailability"], x.get("layerSize")) for x in layers] == [
        ("AVAILABLE", len(first + rest)),
        ("AVAILABLE", 3),
    ]


def test_an_image_pushed_through_v2_is_seen_and_pulled_through_ecr(
    ecr: ECRClient, repo: str, ecr_server: RegistryServer
) -> None:
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"a layer pushed over /v2/"
    with ecr_server.client() as v2:
        for blob in (config, layer):
            pushed = v2.post(
                f"/v2/{repo}/blobs/uploads/", params={"digest": sha(blob)}, content=blob
            )
            assert pushed.status_code == 201, pushed.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "digest": sha(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "digest": sha(layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        put = v2.put(
            f"/v2/{repo}/manifests/v2-push",
            content=manifest,
            headers={"Content-Type": DOCKER_MANIFEST},
        )
        assert put.status_code == 201, put.text

    [detail] = ecr.describe_images(repositoryName=repo)["imageDetails"]
    assert detail["imageDigest"] == sha(manifest)
    assert detail["imageTags"] == ["v2-push"]
    assert detail["imageManifestMediaType"] == DOCKER_MANIFEST
    assert detail["artifactMediaType"] == "application/vnd.docker.container.image.v1+json"
    assert detail["imageSizeInBytes"] == len(layer)
    [image] = ecr.batch_get_image(
        repositoryName=repo,
        imageIds=[{"imageTag": "v2-push"}],
        acceptedMediaTypes=[DOCKER_MANIFEST],
    )["images"]
    assert image["imageManifest"].encode() == manifest
    url = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=sha(layer))["downloadUrl"]
    assert httpx.get(url).content == layer
