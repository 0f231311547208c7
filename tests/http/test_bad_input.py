"""Malformed requests to the whole application, with real credentials, on SQLite and PostgreSQL:
each gets its protocol's 4xx, never a 500.

JSON nested far deeper than Python's decoder recurses (manifests, ECR bodies, PutImage's
manifest, policy documents); a NUL byte in a repository name, a tag or `last=` (PostgreSQL
refuses NUL in text, and authorization reads the repository's policy by name); Unicode digits in
`n=` and in a presigned download's expiry; references that are neither tag nor digest; and blob
`Range` headers, unsatisfiable or malformed. An AWS call that fails unexpectedly answers in its
own protocol's shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cargohold import admin
from cargohold.app import Application, Node
from cargohold.config import Config, load
from cargohold.http import awsfront
from oci_harness import expect_error, push_image
from support.images import OCI_MANIFEST

pytestmark = [pytest.mark.anyio, pytest.mark.every_database]

NAME = "team/app"
DEEP = 100_000
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."
JSON_11 = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
UPLOAD = "0b8e6a5e-0d1c-4c5e-9a57-2f1b7a0c3d4e"
ZERO_DIGEST = "sha256:" + "0" * 64


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@dataclass
class Served:
    http: httpx.AsyncClient
    config: Config
    key: str
    secret: str

    def _signed(self, service: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method="POST", url="http://registry.test/", data=body, headers=headers)
        SigV4Auth(Credentials(self.key, self.secret), service, self.config.region).add_auth(request)
        return dict(request.headers.items())

    async def ecr(self, operation: str, body: bytes | str) -> httpx.Response:
        data = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": JSON_11, "X-Amz-Target": ECR_TARGET + operation}
        signed = self._signed("ecr", data, headers)
        return await self.http.post("/", content=data, headers=signed, auth=None)

    async def query(self, service: str, params: dict[str, str]) -> httpx.Response:
        data = urlencode(params).encode()
        headers = self._signed(service, data, {"Content-Type": FORM})
        return await self.http.post("/", content=data, headers=headers, auth=None)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Config:
    overrides = {"data_dir": str(tmp_path / "data"), "database_url": db_url, "create_on_push": True}
    return load(overrides=overrides, environ={})


@pytest.fixture
def credentials(config: Config) -> Iterator[tuple[str, str, str]]:
    key = admin.administrator_credentials(config)
    yield key.access_key_id, key.secret_access_key, admin.login_password(config)


@pytest.fixture
async def served(config: Config, credentials: tuple[str, str, str]) -> AsyncIterator[Served]:
    key, secret, password = credentials
    app = Application(config)
    app.node = await Node.open(config)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://registry.test", auth=("AWS", password)
        ) as http:
            yield Served(http, config, key, secret)
    finally:
        await app.node.close()


def aws_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["__type"] == code, body
    return body


def query_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    root = ElementTree.fromstring(response.content)
    found = [el.text for el in root.iter() if el.tag.endswith("Code")]
    assert found == [code], response.text
    fault = [el.text for el in root.iter() if el.tag.endswith("Type")]
    assert fault == ["Receiver" if status >= 500 else "Sender"], response.text
    message = [el.text for el in root.iter() if el.tag.endswith("Message")]
    return message[0] or ""


async def assert_still_serving(served: Served) -> None:
    assert (await served.http.get("/v2/")).status_code == 200
    listed = await served.ecr("DescribeRepositories", "{}")
    assert listed.status_code == 200, listed.text


# -- deeply nested JSON -----------------------------------------------------------------------


async def test_deeply_nested_manifest_is_manifest_invalid(served: Served) -> None:
    for body in (nested(DEEP), '{"schemaVersion": 2, "config": ' + nested(DEEP) + "}"):
        response = await served.http.put(
            f"/v2/{NAME}/manifests/deep",
            content=body.encode(),
            headers={"Content-Type": OCI_MANIFEST},
        )
        expect_error(response, 400, "MANIFEST_INVALID")
    expect_error(await served.http.get(f"/v2/{NAME}/manifests/deep"), 404, "MANIFEST_UNKNOWN")
    await assert_still_serving(served)


async def test_deeply_nested_ecr_bodies_are_serialization_errors(served: Served) -> None:
    for body in (
        nested(DEEP),
        '{"repositoryName": ' + nested(DEEP) + "}",
        '{"repositoryNames": ["a", {"x": ' + nested(DEEP) + "}]}",
    ):
        response = await served.ecr("DescribeRepositories", body)
        aws_error(response, 400, "SerializationException")
    await assert_still_serving(served)


async def test_put_image_with_a_deeply_nested_manifest(served: Served) -> None:
    await served.ecr("CreateRepository", json.dumps({"repositoryName": NAME}))
    for manifest in (nested(DEEP), '{"schemaVersion": 2, "mediaType": ' + nested(DEEP) + "}"):
        body = {"repositoryName": NAME, "imageManifest": manifest, "imageTag": "deep"}
        response = await served.ecr("PutImage", json.dumps(body))
        aws_error(response, 400, "InvalidParameterException")
    await assert_still_serving(served)


async def test_deeply_nested_policy_documents(served: Served) -> None:
    await served.ecr("CreateRepository", json.dumps({"repositoryName": NAME}))
    # Each as long as the operation's model allows, and far deeper than Python recurses.
    ecr_policy = '{"Version": "2012-10-17", "Statement": ' + nested(5_000) + "}"
    response = await served.ecr(
        "SetRepositoryPolicy", json.dumps({"repositoryName": NAME, "policyText": ecr_policy})
    )
    aws_error(response, 400, "InvalidParameterException")
    response = await served.ecr("PutRegistryPolicy", json.dumps({"policyText": ecr_policy}))
    aws_error(response, 400, "InvalidParameterException")
    # Within IAM's quotas (2,048 characters for a trust or inline policy), still too deep.
    iam_policy = nested(1_000)
    for params in (
        {"Action": "CreatePolicy", "PolicyName": "deep", "PolicyDocument": iam_policy},
        {"Action": "CreateRole", "RoleName": "deep", "AssumeRolePolicyDocument": iam_policy},
        {
            "Action": "PutUserPolicy",
            "UserName": "admin",
            "PolicyName": "deep",
            "PolicyDocument": iam_policy,
        },
    ):
        response = await served.query("iam", {**params, "Version": "2010-05-08"})
        query_error(response, 400, "MalformedPolicyDocument")
    response = await served.query(
        "sts",
        {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": "arn:aws:iam::123456789012:role/none",
            "RoleSessionName": "deep",
            "Policy": nested(1_000),
        },
    )
    query_error(response, 400, "MalformedPolicyDocument")
    await assert_still_serving(served)


# -- NUL bytes and Unicode digits -------------------------------------------------------------

BAD_NAME = "team/a%00b"
ROUTES = [
    ("GET", f"/v2/{BAD_NAME}/tags/list"),
    ("GET", f"/v2/{BAD_NAME}/manifests/latest"),
    ("HEAD", f"/v2/{BAD_NAME}/manifests/latest"),
    ("PUT", f"/v2/{BAD_NAME}/manifests/latest"),
    ("DELETE", f"/v2/{BAD_NAME}/manifests/latest"),
    ("GET", f"/v2/{BAD_NAME}/blobs/{ZERO_DIGEST}"),
    ("HEAD", f"/v2/{BAD_NAME}/blobs/{ZERO_DIGEST}"),
    ("DELETE", f"/v2/{BAD_NAME}/blobs/{ZERO_DIGEST}"),
    ("POST", f"/v2/{BAD_NAME}/blobs/uploads/"),
    ("GET", f"/v2/{BAD_NAME}/blobs/uploads/{UPLOAD}"),
    ("PATCH", f"/v2/{BAD_NAME}/blobs/uploads/{UPLOAD}"),
    ("PUT", f"/v2/{BAD_NAME}/blobs/uploads/{UPLOAD}?digest={ZERO_DIGEST}"),
    ("DELETE", f"/v2/{BAD_NAME}/blobs/uploads/{UPLOAD}"),
    ("GET", f"/v2/{BAD_NAME}/referrers/{ZERO_DIGEST}"),
]


async def test_a_nul_in_a_repository_name_is_name_invalid_on_every_route(served: Served) -> None:
    for method, path in ROUTES:
        response = await served.http.request(method, path, content=b"{}")
        if method == "HEAD":
            assert response.status_code == 400, (method, path)
        else:
            expect_error(response, 400, "NAME_INVALID")
    await assert_still_serving(served)


async def test_a_nul_in_last_or_a_tag(served: Served) -> None:
    await push_image(served.http, NAME, "nul", "v1")
    expect_error(await served.http.get("/v2/_catalog?last=a%00b"), 400, "NAME_INVALID")
    expect_error(await served.http.get(f"/v2/{NAME}/tags/list?last=v%00"), 400, "TAG_INVALID")
    for method in ("GET", "DELETE"):
        response = await served.http.request(method, f"/v2/{NAME}/manifests/v%001")
        expect_error(response, 404, "MANIFEST_UNKNOWN")
    assert (await served.http.head(f"/v2/{NAME}/manifests/v%001")).status_code == 404
    response = await served.http.put(
        f"/v2/{NAME}/manifests/v%001", content=b"{}", headers={"Content-Type": OCI_MANIFEST}
    )
    expect_error(response, 400, "TAG_INVALID")
    # A mount from a repository whose name holds a NUL is a plain upload session, as the spec
    # answers any mount that cannot be done.
    mount = await served.http.post(f"/v2/{NAME}/blobs/uploads/?mount={ZERO_DIGEST}&from=a%00b")
    assert mount.status_code == 202, mount.text
    assert (await served.http.get(f"/v2/{NAME}/tags/list")).json()["tags"] == ["v1"]


async def test_a_nul_in_a_manifests_media_types(served: Served) -> None:
    image = await push_image(served.http, NAME, "media", "v1")
    for field in ("artifactType", "config", "layers"):
        manifest = json.loads(image.manifest)
        if field == "artifactType":
            manifest["artifactType"] = "application/x\u0000"
        elif field == "config":
            manifest["config"]["mediaType"] = "application/x\u0000"
        else:
            manifest["layers"][0]["artifactType"] = "application/x\u0001"
        response = await served.http.put(
            f"/v2/{NAME}/manifests/nul",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": OCI_MANIFEST},
        )
        expect_error(response, 400, "MANIFEST_INVALID")
    response = await served.http.get(
        f"/v2/{NAME}/referrers/{image.digest}", params={"artifactType": "a\u0000b"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["manifests"] == []


async def test_a_nul_in_ecr_parameters_is_invalid_parameter(served: Served) -> None:
    await served.ecr("CreateRepository", json.dumps({"repositoryName": NAME}))
    tag = [{"imageTag": "v\u00001"}]
    for operation, body, failure in (
        ("BatchGetImage", {"repositoryName": NAME, "imageIds": tag}, "InvalidImageTag"),
        ("BatchDeleteImage", {"repositoryName": NAME, "imageIds": tag}, "InvalidImageTag"),
        (
            "BatchCheckLayerAvailability",
            {"repositoryName": NAME, "layerDigests": ["sha256:\u0000"]},
            "InvalidLayerDigest",
        ),
    ):
        # ECR reports these per image (or layer), with the call itself succeeding.
        response = await served.ecr(operation, json.dumps(body))
        assert response.status_code == 200, (operation, response.text)
        assert [f["failureCode"] for f in response.json()["failures"]] == [failure]
    for operation, body in (
        ("DescribeImages", {"repositoryName": NAME, "imageIds": tag}),
        ("ListImages", {"repositoryName": NAME, "nextToken": "a\u0000"}),
    ):
        aws_error(await served.ecr(operation, json.dumps(body)), 400, "InvalidParameterException")
    response = await served.ecr("DescribeRepositories", '{"repositoryNames": ["a\\u0000b"]}')
    assert response.status_code == 400, response.text
    assert response.json()["__type"] in ("InvalidParameterException", "ValidationException")
    tagged = {"repositoryName": "team/tagged", "tags": [{"Key": "a\u0000", "Value": "b"}]}
    response = await served.ecr("CreateRepository", json.dumps(tagged))
    aws_error(response, 400, "InvalidTagParameterException")
    for tags in ([{"Key": "a", "Value": "b\u0000"}], [{"Key": "a\u0001", "Value": "b"}]):
        arn = f"arn:aws:ecr:{served.config.region}:{served.config.account_id}:repository/{NAME}"
        response = await served.ecr("TagResource", json.dumps({"resourceArn": arn, "tags": tags}))
        aws_error(response, 400, "InvalidTagParameterException")
    template = {
        "prefix": "pre",
        "appliedFor": ["CREATE_ON_PUSH"],
        "resourceTags": [{"Key": "a", "Value": "b\u0000"}],
    }
    response = await served.ecr("CreateRepositoryCreationTemplate", json.dumps(template))
    aws_error(response, 400, "InvalidTagParameterException")
    await assert_still_serving(served)


@pytest.mark.parametrize("n", ["²", "٣", "1²", "-1", "1e3", " 1"])
async def test_n_must_be_ascii_digits(served: Served, n: str) -> None:
    await push_image(served.http, NAME, "digits", "v1")
    for path in ("/v2/_catalog", f"/v2/{NAME}/tags/list"):
        response = await served.http.get(path, params={"n": n})
        expect_error(response, 400, "PAGINATION_NUMBER_INVALID")


async def test_a_huge_n_is_the_largest_page(served: Served) -> None:
    await push_image(served.http, NAME, "huge", "v1")
    response = await served.http.get(f"/v2/{NAME}/tags/list", params={"n": "9" * 5000})
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["v1"]


@pytest.mark.parametrize("expires", ["²", "١٢٣", "9" * 5000, "-1"])
async def test_download_expiry_in_unicode_digits_is_refused(served: Served, expires: str) -> None:
    path = f"/_download/{served.config.account_id}/{NAME}/blobs/{ZERO_DIGEST}"
    response = await served.http.get(
        path, params={"X-Cargohold-Expires": expires, "X-Cargohold-Signature": "x"}
    )
    assert response.status_code == 403, response.text
    assert b"<Code>AccessDenied</Code>" in response.content


async def test_presigned_expiry_in_unicode_digits_is_an_incomplete_signature(
    served: Served,
) -> None:
    for expires in ("²", "9" * 5000):
        params = {
            "Action": "GetCallerIdentity",
            "Version": "2011-06-15",
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{served.key}/20260101/{served.config.region}/sts/aws4_request",
            "X-Amz-Date": "20260101T000000Z",
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": "0" * 64,
        }
        response = await served.http.get("/", params=params, auth=None)
        assert response.status_code == 400, response.text
        assert b"<Code>IncompleteSignature</Code>" in response.content


async def test_content_range_must_hold_ascii_numbers(served: Served) -> None:
    start = await served.http.post(f"/v2/{NAME}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = start.headers["location"]
    for header in (b"0-" + b"9" * 5000, "0-²".encode("latin-1")):
        response = await served.http.patch(
            location, content=b"x", headers={"Content-Range": header}
        )
        expect_error(response, 400, "BLOB_UPLOAD_INVALID")
    status = await served.http.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"


# -- references and ranges --------------------------------------------------------------------


async def test_a_reference_neither_tag_nor_digest_is_manifest_unknown(served: Served) -> None:
    image = await push_image(served.http, NAME, "refs", "v1")
    for reference in (".INVALID_MANIFEST_NAME", "-dash", "a" * 129):
        for method in ("GET", "DELETE"):
            response = await served.http.request(method, f"/v2/{NAME}/manifests/{reference}")
            expect_error(response, 404, "MANIFEST_UNKNOWN")
        assert (await served.http.head(f"/v2/{NAME}/manifests/{reference}")).status_code == 404
        response = await served.http.put(
            f"/v2/{NAME}/manifests/{reference}",
            content=image.manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        expect_error(response, 400, "TAG_INVALID")


async def test_blob_ranges(served: Served) -> None:
    image = await push_image(served.http, NAME, "ranges", "v1")
    path = f"/v2/{NAME}/blobs/{image.config.digest}"
    data = (await served.http.get(path)).content
    size = len(data)
    assert size > 4
    for unsatisfiable in ("bytes=500-0", f"bytes={size}-", "bytes=3-1", f"bytes={size + 9}-0"):
        response = await served.http.get(path, headers={"Range": unsatisfiable})
        assert response.status_code == 416, (unsatisfiable, response.text)
        assert response.headers["content-range"] == f"bytes */{size}"
    for malformed in ("bytes=abc", "bytes=1-2-3", "bytes=", "bytes=--1", "items=0-1", "0-1"):
        response = await served.http.get(path, headers={"Range": malformed})
        assert response.status_code == 200, (malformed, response.text)
        assert response.content == data
    response = await served.http.get(path, headers={"Range": "bytes=1-3"})
    assert response.status_code == 206
    assert response.content == data[1:4]
    assert response.headers["content-range"] == f"bytes 1-3/{size}"
    response = await served.http.get(path, headers={"Range": "bytes=500-0, -2"})
    assert response.status_code == 206
    assert response.content == data[-2:]


# -- unexpected failures on POST / ------------------------------------------------------------


async def test_an_unexpected_failure_answers_in_the_aws_protocol(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(awsfront.AwsFront, "_serve", broken)
    body = aws_error(await served.ecr("DescribeRepositories", "{}"), 500, "ServerException")
    assert "errors" not in body
    response = await served.query("iam", {"Action": "ListUsers", "Version": "2010-05-08"})
    query_error(response, 500, "ServiceFailure")
    monkeypatch.undo()
    # Outside the pipeline's own handling: the application's last resort speaks AWS too.
    monkeypatch.setattr(awsfront, "read_body", broken)
    body = aws_error(await served.ecr("DescribeRepositories", "{}"), 500, "ServerException")
    assert response.headers["x-amzn-requestid"]
    response = await served.query("sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"})
    assert response.status_code == 500
    assert b"<Code>" in response.content and b'"errors"' not in response.content
