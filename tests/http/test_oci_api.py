"""Every endpoint of the OCI Distribution Spec v1.1, with the statuses and headers spec.md gives.

References such as end-4b are the spec's endpoint table; each test drives the OCI front over
ASGI and checks what a client relies on: status, headers, exact bytes, and the error body.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import uuid
from typing import Any

import anyio
import httpx
import pytest

from cargohold.app import Application, Node
from cargohold.config import Config
from cargohold.domain.errors import TooManyRequests
from cargohold.domain.manifest import MAX_MANIFEST_BYTES
from cargohold.domain.principal import Principal
from cargohold.http.oci import Access, Forbidden, Unauthenticated
from oci_harness import (
    AllowAll,
    FrontApp,
    PushedImage,
    codes,
    expect_error,
    get_manifest,
    push_blob,
    push_image,
    push_image_blobs,
    put_manifest,
    sha256,
    sha512,
    start_upload,
)
from support.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    EMPTY_DIGEST,
    EMPTY_JSON,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    artifact_manifest,
    canonical_json,
    image_manifest,
    index_manifest,
)

pytestmark = pytest.mark.anyio

NAME = "team/app"
API_VERSION = "registry/2.0"


def upload_path(location: str) -> str:
    """The path of an upload Location (relative or absolute), without its query."""
    return httpx.URL(location).path


# -- end-1: the version check ----------------------------------------------------------------


async def test_version_check(client: httpx.AsyncClient) -> None:
    for path in ("/v2/", "/v2"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["docker-distribution-api-version"] == API_VERSION
    head = await client.head("/v2/")
    assert head.status_code == 200 and head.content == b""


async def test_unknown_paths_and_methods(client: httpx.AsyncClient) -> None:
    expect_error(await client.get("/v2/x/y/unknown"), 404, "NOT_FOUND")
    expect_error(await client.post("/v2/"), 405, "UNSUPPORTED")
    expect_error(await client.post(f"/v2/{NAME}/manifests/latest"), 405, "UNSUPPORTED")
    expect_error(await client.put(f"/v2/{NAME}/blobs/{sha256(b'')}"), 405, "UNSUPPORTED")
    expect_error(await client.delete(f"/v2/{NAME}/tags/list"), 405, "UNSUPPORTED")
    expect_error(await client.post("/v2/_catalog"), 405, "UNSUPPORTED")


# -- end-2, end-10: blobs ------------------------------------------------------------------


async def test_blob_head_get_delete(client: httpx.AsyncClient) -> None:
    data = os.urandom(100_000)
    digest = await push_blob(client, NAME, data)
    head = await client.head(f"/v2/{NAME}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["docker-content-digest"] == digest
    assert head.content == b""
    got = await client.get(f"/v2/{NAME}/blobs/{digest}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["docker-content-digest"] == digest
    assert got.headers["content-length"] == str(len(data))

    deleted = await client.delete(f"/v2/{NAME}/blobs/{digest}")
    assert deleted.status_code == 202
    expect_error(await client.get(f"/v2/{NAME}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert (await client.head(f"/v2/{NAME}/blobs/{digest}")).status_code == 404
    expect_error(await client.delete(f"/v2/{NAME}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


async def test_blobs_belong_to_their_repository(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, NAME, b"private to team/app")
    await push_blob(client, "other", b"something else")
    expect_error(await client.get(f"/v2/other/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert (await client.head(f"/v2/other/blobs/{digest}")).status_code == 404


async def test_blob_ranges(client: httpx.AsyncClient) -> None:
    data = os.urandom(10_000)
    digest = await push_blob(client, NAME, data)
    url = f"/v2/{NAME}/blobs/{digest}"
    for header, start, end in (
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=9000-", 9000, 9999),
        ("bytes=-10", 9990, 9999),
        ("bytes=9990-20000", 9990, 9999),
    ):
        response = await client.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        assert response.content == data[start : end + 1], header
        assert response.headers["content-length"] == str(end - start + 1)
        assert response.headers["docker-content-digest"] == digest
    unsatisfiable = await client.get(url, headers={"Range": "bytes=10000-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(data)}"


# -- end-4a/4b, end-6: monolithic uploads ----------------------------------------------------


async def test_single_post_upload(client: httpx.AsyncClient) -> None:
    data = os.urandom(5000)
    digest = sha256(data)
    response = await client.post(
        f"/v2/{NAME}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201
    assert response.headers["docker-content-digest"] == digest
    fetched = await client.get(response.headers["location"])
    assert fetched.status_code == 200 and fetched.content == data


async def test_post_then_put(client: httpx.AsyncClient) -> None:
    data = os.urandom(70_000)
    started = await client.post(f"/v2/{NAME}/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["location"]
    session = upload_path(location).rsplit("/", 1)[1]
    assert uuid.UUID(session)
    assert upload_path(location) == f"/v2/{NAME}/blobs/uploads/{session}"
    assert started.headers["range"] == "0-0"
    assert started.headers["docker-upload-uuid"] == session
    done = await client.put(
        location,
        params={"digest": sha256(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    assert done.headers["docker-content-digest"] == sha256(data)
    assert done.headers["location"] == f"/v2/{NAME}/blobs/{sha256(data)}"
    assert (await client.get(done.headers["location"])).content == data
    # The session is closed: it is unknown now.
    expect_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_upload_to_a_new_repository_creates_it(client: httpx.AsyncClient) -> None:
    expect_error(await client.get("/v2/brand/new/tags/list"), 404, "NAME_UNKNOWN")
    await push_blob(client, "brand/new", b"first")
    listing = await client.get("/v2/brand/new/tags/list")
    assert listing.status_code == 200 and listing.json() == {"name": "brand/new", "tags": []}


# -- end-5, end-6, end-13, end-14: chunked uploads -------------------------------------------


async def test_chunked_upload(client: httpx.AsyncClient) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    location = await start_upload(client, NAME)
    offset = 0
    for size in (1, 1024 * 1024, 2 * 1024 * 1024):
        chunk = data[offset : offset + size]
        response = await client.patch(
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )
        assert response.status_code == 202, response.text
        offset += len(chunk)
        assert response.headers["range"] == f"0-{offset - 1}"
        location = response.headers["location"]
        status = await client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{offset - 1}"
        assert upload_path(status.headers["location"]) == upload_path(location)
        assert status.content == b""
    done = await client.put(
        location,
        params={"digest": sha256(data)},
        content=data[offset:],
        headers={"Content-Range": f"{offset}-{len(data) - 1}"},
    )
    assert done.status_code == 201, done.text
    assert done.headers["docker-content-digest"] == sha256(data)
    assert (await client.get(f"/v2/{NAME}/blobs/{sha256(data)}")).content == data


async def test_chunked_upload_closed_by_an_empty_put(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, NAME)
    for part in (b"part one, ", b"part two"):
        response = await client.patch(location, content=part)  # streamed: no Content-Range
        assert response.status_code == 202
        location = response.headers["location"]
    done = await client.put(location, params={"digest": sha256(b"part one, part two")})
    assert done.status_code == 201, done.text


@pytest.mark.parametrize(
    "content_range",
    ["5-9", "1-10", "0-4", "3-7", "11-15"],
    ids=["gap", "off-by-one-late", "overlap-start", "overlap-middle", "far-ahead"],
)
async def test_out_of_order_chunks(client: httpx.AsyncClient, content_range: str) -> None:
    location = await start_upload(client, NAME)
    first = await client.patch(location, content=b"0123456789", headers={"Content-Range": "0-9"})
    assert first.status_code == 202
    location = first.headers["location"]
    start, end = (int(x) for x in content_range.split("-"))
    refused = await client.patch(
        location, content=b"x" * (end - start + 1), headers={"Content-Range": content_range}
    )
    expect_error(refused, 416, "BLOB_UPLOAD_INVALID")
    assert refused.headers["range"] == "0-9"
    status = await client.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-9"
    # A final chunk out of order is refused the same way on PUT.
    refused_put = await client.put(
        location,
        params={"digest": sha256(b"0123456789" + b"x" * (end - start + 1))},
        content=b"x" * (end - start + 1),
        headers={"Content-Range": content_range},
    )
    expect_error(refused_put, 416, "BLOB_UPLOAD_INVALID")
    assert refused_put.headers["range"] == "0-9"
    # The client recovers from the reported offset.
    done = await client.put(
        location,
        params={"digest": sha256(b"0123456789abc")},
        content=b"abc",
        headers={"Content-Range": "10-12"},
    )
    assert done.status_code == 201, done.text


async def test_cancel_upload(client: httpx.AsyncClient) -> None:
    location = await start_upload(client, NAME)
    await client.patch(location, content=b"abandoned")
    cancelled = await client.delete(location)
    assert cancelled.status_code == 204
    expect_error(await client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(await client.patch(location, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    expect_error(
        await client.put(location, params={"digest": sha256(b"abandoned")}),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    )
    expect_error(await client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert (await client.head(f"/v2/{NAME}/blobs/{sha256(b'abandoned')}")).status_code == 404


# -- end-11: cross-repository mount ----------------------------------------------------------


async def test_mount_from_a_repository_that_holds_the_blob(
    client: httpx.AsyncClient, node: Node
) -> None:
    digest = await push_blob(client, "source", b"shared layer")
    # ECR mounts only with the account's BLOB_MOUNTING setting ENABLED; until then, a session.
    declined = await client.post(
        "/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"}
    )
    assert declined.status_code == 202
    assert (await client.get(declined.headers["location"])).status_code == 204
    assert (await client.head(f"/v2/target/blobs/{digest}")).status_code == 404
    async with node.store.write() as tx:
        await tx.templates.put_account_setting(node.config.account_id, "BLOB_MOUNTING", "ENABLED")
    response = await client.post(
        "/v2/target/blobs/uploads/", params={"mount": digest, "from": "source"}
    )
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/target/blobs/{digest}"
    assert response.headers["docker-content-digest"] == digest
    assert (await client.get(f"/v2/target/blobs/{digest}")).content == b"shared layer"


@pytest.mark.parametrize("source", ["source", "missing/repo", "UPPER"])
async def test_mount_that_cannot_be_done_opens_a_session(
    client: httpx.AsyncClient, node: Node, source: str
) -> None:
    async with node.store.write() as tx:
        await tx.templates.put_account_setting(node.config.account_id, "BLOB_MOUNTING", "ENABLED")
    await push_blob(client, "source", b"something else")
    digest = sha256(b"not in source")
    response = await client.post(
        "/v2/target/blobs/uploads/", params={"mount": digest, "from": source}
    )
    assert response.status_code == 202
    location = response.headers["location"]
    assert (await client.get(location)).status_code == 204
    expect_error(await client.get(f"/v2/target/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    done = await client.put(location, params={"digest": digest}, content=b"not in source")
    assert done.status_code == 201


# -- end-3, end-7, end-9: manifests ----------------------------------------------------------


async def check_manifest(
    client: httpx.AsyncClient, reference: str, raw: bytes, media_type: str, digest: str
) -> None:
    for method in ("GET", "HEAD"):
        response = await client.request(
            method,
            f"/v2/{NAME}/manifests/{reference}",
            headers={"Accept": media_type},
        )
        assert response.status_code == 200, (method, response.text)
        assert response.headers["content-type"] == media_type
        assert response.headers["docker-content-digest"] == digest
        assert response.headers["content-length"] == str(len(raw))
        assert response.content == (raw if method == "GET" else b"")


async def test_oci_image_manifest_by_tag_and_digest(client: httpx.AsyncClient) -> None:
    image = await push_image_blobs(client, NAME, "oci")
    # Pretty-printed on purpose: the registry must keep the bytes, not re-serialise them.
    raw = json.dumps(json.loads(image.manifest), indent=3).encode() + b"\n"
    digest = sha256(raw)
    pushed = await put_manifest(client, NAME, "v1", raw, OCI_MANIFEST)
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["location"] == f"/v2/{NAME}/manifests/{digest}"
    assert pushed.headers["docker-content-digest"] == digest
    assert "oci-subject" not in pushed.headers
    await check_manifest(client, "v1", raw, OCI_MANIFEST, digest)
    await check_manifest(client, digest, raw, OCI_MANIFEST, digest)
    by_digest = await put_manifest(client, NAME, digest, raw, OCI_MANIFEST)
    assert by_digest.status_code == 201
    assert by_digest.headers["docker-content-digest"] == digest


async def test_missing_manifests(client: httpx.AsyncClient) -> None:
    await push_blob(client, NAME, b"make the repository exist")
    expect_error(await get_manifest(client, NAME, "nope"), 404, "MANIFEST_UNKNOWN")
    expect_error(await get_manifest(client, NAME, sha256(b"nope")), 404, "MANIFEST_UNKNOWN")
    head = await client.head(f"/v2/{NAME}/manifests/nope")
    assert head.status_code == 404
    expect_error(await get_manifest(client, "no/repo", "latest"), 404, "NAME_UNKNOWN")


async def test_oci_index(client: httpx.AsyncClient) -> None:
    children = [await push_image(client, NAME, arch) for arch in ("amd64", "arm64")]
    descriptors = [
        Descriptor(
            OCI_MANIFEST, c.digest, len(c.manifest), platform={"architecture": a, "os": "linux"}
        )
        for c, a in zip(children, ("amd64", "arm64"), strict=True)
    ]
    raw = index_manifest(descriptors)
    pushed = await put_manifest(client, NAME, "multi", raw, OCI_INDEX)
    assert pushed.status_code == 201, pushed.text
    await check_manifest(client, "multi", raw, OCI_INDEX, sha256(raw))
    for child in children:
        await check_manifest(client, child.digest, child.manifest, OCI_MANIFEST, child.digest)


async def docker_image(client: httpx.AsyncClient, seed: str) -> bytes:
    layer = f"docker layer {seed}".encode()
    config = canonical_json({"architecture": "amd64", "os": "linux", "seed": seed})
    await push_blob(client, NAME, layer)
    await push_blob(client, NAME, config)
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": Descriptor.of(DOCKER_CONFIG, config).to_json(),
            "layers": [Descriptor.of(DOCKER_LAYER_GZIP, layer).to_json()],
        }
    )


async def test_docker_manifest_and_manifest_list(client: httpx.AsyncClient) -> None:
    amd, arm = await docker_image(client, "amd"), await docker_image(client, "arm")
    for raw in (amd, arm):
        assert (
            await put_manifest(client, NAME, sha256(raw), raw, DOCKER_MANIFEST)
        ).status_code == 201
    await check_manifest(client, sha256(amd), amd, DOCKER_MANIFEST, sha256(amd))
    listing = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    **Descriptor.of(DOCKER_MANIFEST, raw).to_json(),
                    "platform": {"architecture": a, "os": "linux"},
                }
                for raw, a in ((amd, "amd64"), (arm, "arm64"))
            ],
        }
    )
    pushed = await put_manifest(client, NAME, "list", listing, DOCKER_MANIFEST_LIST)
    assert pushed.status_code == 201, pushed.text
    await check_manifest(client, "list", listing, DOCKER_MANIFEST_LIST, sha256(listing))


async def test_accept_negotiation(client: httpx.AsyncClient) -> None:
    image = await push_image(client, NAME, "negotiate", "v1")
    expect_error(await get_manifest(client, NAME, "v1", DOCKER_MANIFEST), 404, "MANIFEST_UNKNOWN")
    head = await client.head(f"/v2/{NAME}/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert head.status_code == 404
    for accept in (OCI_MANIFEST, "*/*", f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"):
        assert (await get_manifest(client, NAME, "v1", accept)).content == image.manifest
    no_accept = await client.get(f"/v2/{NAME}/manifests/v1")
    assert no_accept.status_code == 200 and no_accept.content == image.manifest
    # Several Accept headers count together, as clients such as containerd send them.
    several = await client.get(
        f"/v2/{NAME}/manifests/v1",
        headers=[("Accept", DOCKER_MANIFEST), ("Accept", OCI_MANIFEST)],
    )
    assert several.status_code == 200


async def test_manifest_blob_unknown(client: httpx.AsyncClient) -> None:
    image = await push_image_blobs(client, NAME, "complete")
    missing = Descriptor(OCI_MANIFEST.replace("manifest", "layer"), sha256(b"missing"), 7)
    for raw in (
        image_manifest(image.config, [*image.layers, missing]),  # a missing layer
        image_manifest(Descriptor(image.config.media_type, sha256(b"no config"), 9), image.layers),
    ):
        response = await put_manifest(client, NAME, "broken", raw, OCI_MANIFEST)
        expect_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    expect_error(await get_manifest(client, NAME, "broken"), 404, "MANIFEST_UNKNOWN")


async def test_index_with_a_missing_child(client: httpx.AsyncClient) -> None:
    present = await push_image(client, NAME, "present")
    absent = await push_image_blobs(client, NAME, "absent")
    raw = index_manifest([present.descriptor, absent.descriptor])
    response = await put_manifest(client, NAME, "multi", raw, OCI_INDEX)
    assert response.status_code == 400, response.text
    # The spec: a manifest refused for a missing reference gets MANIFEST_BLOB_UNKNOWN; the
    # child it lacks is a manifest, which MANIFEST_UNKNOWN names.
    assert "MANIFEST_BLOB_UNKNOWN" in codes(response)
    assert "MANIFEST_UNKNOWN" in codes(response)
    assert absent.digest in response.text
    expect_error(await get_manifest(client, NAME, "multi"), 404, "MANIFEST_UNKNOWN")


async def padded_manifest(image: PushedImage, size: int) -> bytes:
    document: dict[str, Any] = json.loads(image.manifest)
    document["annotations"] = {"pad": ""}
    base = len(canonical_json(document))
    document["annotations"] = {"pad": "x" * (size - base)}
    raw = canonical_json(document)
    assert len(raw) == size
    return raw


async def test_manifest_size_limit(client: httpx.AsyncClient) -> None:
    image = await push_image_blobs(client, NAME, "big")
    at_limit = await padded_manifest(image, MAX_MANIFEST_BYTES)
    accepted = await put_manifest(client, NAME, "at-limit", at_limit, OCI_MANIFEST)
    assert accepted.status_code == 201, accepted.text
    assert (await get_manifest(client, NAME, "at-limit")).content == at_limit
    over = await padded_manifest(image, MAX_MANIFEST_BYTES + 1)
    expect_error(await put_manifest(client, NAME, "over", over, OCI_MANIFEST), 413, "SIZE_INVALID")

    async def streamed() -> Any:
        for start in range(0, len(over), 65536):
            yield over[start : start + 65536]

    # Without a Content-Length the registry still stops reading at the limit.
    chunked = await client.put(
        f"/v2/{NAME}/manifests/over", content=streamed(), headers={"Content-Type": OCI_MANIFEST}
    )
    expect_error(chunked, 413, "SIZE_INVALID")
    expect_error(await get_manifest(client, NAME, "over"), 404, "MANIFEST_UNKNOWN")


async def test_delete_tag_versus_delete_manifest(client: httpx.AsyncClient) -> None:
    image = await push_image(client, NAME, "deletions", "v1")
    assert (await put_manifest(client, NAME, "v2", image.manifest, OCI_MANIFEST)).status_code == 201
    # By tag: only the tag goes (end-9).
    assert (await client.delete(f"/v2/{NAME}/manifests/v1")).status_code == 202
    expect_error(await get_manifest(client, NAME, "v1"), 404, "MANIFEST_UNKNOWN")
    assert (await get_manifest(client, NAME, "v2")).status_code == 200
    assert (await get_manifest(client, NAME, image.digest)).status_code == 200
    assert (await client.get(f"/v2/{NAME}/tags/list")).json()["tags"] == ["v2"]
    expect_error(await client.delete(f"/v2/{NAME}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    # By digest: the manifest and every tag on it.
    assert (await client.delete(f"/v2/{NAME}/manifests/{image.digest}")).status_code == 202
    for reference in ("v2", image.digest):
        expect_error(await get_manifest(client, NAME, reference), 404, "MANIFEST_UNKNOWN")
    assert (await client.get(f"/v2/{NAME}/tags/list")).json()["tags"] == []
    expect_error(
        await client.delete(f"/v2/{NAME}/manifests/{image.digest}"), 404, "MANIFEST_UNKNOWN"
    )
    expect_error(await client.delete("/v2/no/repo/manifests/v1"), 404, "NAME_UNKNOWN")
    # The blobs stay: deleting a manifest is not deleting its layers.
    assert (await client.head(f"/v2/{NAME}/blobs/{image.layers[0].digest}")).status_code == 200


async def test_tags_move(client: httpx.AsyncClient) -> None:
    one = await push_image(client, NAME, "one", "latest")
    two = await push_image(client, NAME, "two", "latest")
    assert (await get_manifest(client, NAME, "latest")).content == two.manifest
    assert (await get_manifest(client, NAME, one.digest)).content == one.manifest


# -- artifacts, subject and referrers (end-12) ----------------------------------------------


async def push_artifact(
    client: httpx.AsyncClient, subject: Descriptor, artifact_type: str, note: str
) -> bytes:
    blob = f"{artifact_type} {note}".encode()
    await push_blob(client, NAME, blob)
    raw = artifact_manifest(
        artifact_type=artifact_type,
        subject=subject,
        layers=[Descriptor.of("application/vnd.example.data", blob)],
        annotations={"org.example.note": note},
    )
    response = await put_manifest(client, NAME, sha256(raw), raw, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == subject.digest
    return raw


async def test_artifacts_and_referrers(client: httpx.AsyncClient) -> None:
    assert await push_blob(client, NAME, EMPTY_JSON) == EMPTY_DIGEST
    image = await push_image_blobs(client, NAME, "subject")
    subject = image.descriptor
    # Referrers may be pushed before their subject exists.
    sbom = await push_artifact(client, subject, "application/vnd.example.sbom", "1")
    sig = await push_artifact(client, subject, "application/vnd.example.sig", "2")
    assert (await put_manifest(client, NAME, "v1", image.manifest, OCI_MANIFEST)).status_code == 201

    response = await client.get(f"/v2/{NAME}/referrers/{subject.digest}")
    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    assert "oci-filters-applied" not in response.headers
    index = response.json()
    assert (index["schemaVersion"], index["mediaType"]) == (2, OCI_INDEX)
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {sha256(sbom), sha256(sig)}
    assert by_digest[sha256(sbom)] == {
        "mediaType": OCI_MANIFEST,
        "digest": sha256(sbom),
        "size": len(sbom),
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"org.example.note": "1"},
    }

    filtered = await client.get(
        f"/v2/{NAME}/referrers/{subject.digest}",
        params={"artifactType": "application/vnd.example.sig"},
    )
    assert filtered.status_code == 200
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sha256(sig)]

    for digest in (sha256(b"no referrers"), sha256(sbom)):
        empty = await client.get(f"/v2/{NAME}/referrers/{digest}")
        assert empty.status_code == 200
        assert empty.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    none_of_type = await client.get(
        f"/v2/{NAME}/referrers/{subject.digest}", params={"artifactType": "x/none"}
    )
    assert none_of_type.json()["manifests"] == []
    assert none_of_type.headers["oci-filters-applied"] == "artifactType"

    # Artifacts are manifests like others: pulled byte for byte.
    pulled = await get_manifest(client, NAME, sha256(sbom))
    assert pulled.content == sbom


async def test_referrers_report_the_config_type_when_no_artifact_type(
    client: httpx.AsyncClient,
) -> None:
    image = await push_image(client, NAME, "subject2")
    config = b'{"kind": "signature"}'
    await push_blob(client, NAME, config)
    raw = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Descriptor.of("application/vnd.example.sig.config", config).to_json(),
            "layers": [],
            "subject": image.descriptor.to_json(),
        }
    )
    response = await put_manifest(client, NAME, "sig", raw, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == image.digest
    found = (await client.get(f"/v2/{NAME}/referrers/{image.digest}")).json()["manifests"]
    assert [d["artifactType"] for d in found] == ["application/vnd.example.sig.config"]


async def test_index_as_referrer(client: httpx.AsyncClient) -> None:
    image = await push_image(client, NAME, "subject3")
    child = await push_image(client, NAME, "child")
    raw = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [child.descriptor.to_json()],
            "subject": image.descriptor.to_json(),
        }
    )
    response = await put_manifest(client, NAME, sha256(raw), raw, OCI_INDEX)
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == image.digest
    found = (await client.get(f"/v2/{NAME}/referrers/{image.digest}")).json()["manifests"]
    # An index without artifactType is listed without one.
    assert found == [{"mediaType": OCI_INDEX, "digest": sha256(raw), "size": len(raw)}]


async def test_empty_config_artifact_needs_artifact_type(client: httpx.AsyncClient) -> None:
    await push_blob(client, NAME, EMPTY_JSON)
    raw = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [],
        }
    )
    expect_error(await put_manifest(client, NAME, "x", raw, OCI_MANIFEST), 400, "MANIFEST_INVALID")


async def test_referrers_errors(client: httpx.AsyncClient) -> None:
    await push_blob(client, NAME, b"exists")
    expect_error(await client.get(f"/v2/{NAME}/referrers/not-a-digest"), 400, "DIGEST_INVALID")
    expect_error(await client.get(f"/v2/no/repo/referrers/{sha256(b'')}"), 404, "NAME_UNKNOWN")


# -- end-8: tags and the catalog -------------------------------------------------------------


def next_link(response: httpx.Response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>;\s*rel="next"', link)
    assert match, link
    return match.group(1)


async def test_tags_list_with_pagination(client: httpx.AsyncClient) -> None:
    image = await push_image(client, NAME, "tags")
    tags = sorted(["latest", "v1", "v1.1", "V2", "_x", "0.9", "a-b", "a_b", "a.b"])
    for tag in tags:
        assert (
            await put_manifest(client, NAME, tag, image.manifest, OCI_MANIFEST)
        ).status_code == 201
    whole = await client.get(f"/v2/{NAME}/tags/list")
    assert whole.json() == {"name": NAME, "tags": tags}
    assert next_link(whole) is None

    collected: list[str] = []
    url: str | None = f"/v2/{NAME}/tags/list?n=4"
    pages = 0
    while url is not None:
        page = await client.get(url)
        assert page.status_code == 200
        got = page.json()["tags"]
        assert len(got) <= 4
        collected += got
        url = next_link(page)
        pages += 1
        assert pages < 10
    assert collected == tags and pages == 3

    after = await client.get(f"/v2/{NAME}/tags/list", params={"n": 2, "last": "V2"})
    assert after.json()["tags"] == tags[tags.index("V2") + 1 :][:2]
    only_last = await client.get(f"/v2/{NAME}/tags/list", params={"last": "latest"})
    assert only_last.json()["tags"] == tags[tags.index("latest") + 1 :]
    zero = await client.get(f"/v2/{NAME}/tags/list", params={"n": 0})
    assert zero.json()["tags"] == [] and next_link(zero) is None
    exact = await client.get(f"/v2/{NAME}/tags/list", params={"n": len(tags)})
    assert exact.json()["tags"] == tags and next_link(exact) is None
    expect_error(await client.get("/v2/no/repo/tags/list"), 404, "NAME_UNKNOWN")


async def test_catalog_with_pagination(client: httpx.AsyncClient) -> None:
    names = sorted(["a/b", "a-b", "ab", "zz", "m/n/o"])
    for name in names:
        await push_blob(client, name, name.encode())
    whole = await client.get("/v2/_catalog")
    assert whole.status_code == 200 and whole.json() == {"repositories": names}
    first = await client.get("/v2/_catalog", params={"n": 2})
    assert first.json()["repositories"] == names[:2]
    link = next_link(first)
    assert link is not None and link.startswith("/v2/_catalog?")
    second = await client.get(link)
    assert second.json()["repositories"] == names[2:4]
    third = await client.get(next_link(second) or "")
    assert third.json()["repositories"] == names[4:] and next_link(third) is None
    zero = await client.get("/v2/_catalog", params={"n": 0})
    assert zero.json() == {"repositories": []} and next_link(zero) is None


# -- sha512 ----------------------------------------------------------------------------------


async def test_sha512_blobs(client: httpx.AsyncClient) -> None:
    data = os.urandom(200_000)
    digest = sha512(data)
    single = await client.post(
        f"/v2/{NAME}/blobs/uploads/", params={"digest": digest}, content=data
    )
    assert single.status_code == 201, single.text
    assert single.headers["docker-content-digest"] == digest
    got = await client.get(f"/v2/{NAME}/blobs/{digest}")
    assert got.content == data and got.headers["docker-content-digest"] == digest
    head = await client.head(f"/v2/{NAME}/blobs/{digest}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    # The same bytes under sha256 were never pushed.
    assert (await client.head(f"/v2/{NAME}/blobs/{sha256(data)}")).status_code == 404

    chunked_data = os.urandom(100_000)
    location = await start_upload(client, NAME)
    patched = await client.patch(
        location, content=chunked_data[:60_000], headers={"Content-Range": "0-59999"}
    )
    assert patched.status_code == 202
    done = await client.put(
        patched.headers["location"],
        params={"digest": sha512(chunked_data)},
        content=chunked_data[60_000:],
    )
    assert done.status_code == 201, done.text
    assert (await client.get(f"/v2/{NAME}/blobs/{sha512(chunked_data)}")).content == chunked_data
    wrong = await client.post(
        f"/v2/{NAME}/blobs/uploads/", params={"digest": sha512(b"other")}, content=data
    )
    expect_error(wrong, 400, "DIGEST_INVALID")


async def test_sha512_manifest_references(client: httpx.AsyncClient) -> None:
    layer = b"a sha512 layer"
    await client.post(f"/v2/{NAME}/blobs/uploads/", params={"digest": sha512(layer)}, content=layer)
    config = b'{"architecture": "amd64", "os": "linux"}'
    await push_blob(client, NAME, config)
    raw = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Descriptor.of("application/vnd.oci.image.config.v1+json", config).to_json(),
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha512(layer),
                    "size": len(layer),
                }
            ],
        }
    )
    reference = sha512(raw)
    pushed = await put_manifest(client, NAME, reference, raw, OCI_MANIFEST)
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["docker-content-digest"] == reference
    assert pushed.headers["location"] == f"/v2/{NAME}/manifests/{reference}"
    await check_manifest(client, reference, raw, OCI_MANIFEST, reference)
    wrong = await put_manifest(client, NAME, sha512(raw + b" "), raw, OCI_MANIFEST)
    expect_error(wrong, 400, "DIGEST_INVALID")
    assert (await client.delete(f"/v2/{NAME}/manifests/{reference}")).status_code == 202
    expect_error(await get_manifest(client, NAME, reference), 404, "MANIFEST_UNKNOWN")


# -- the error codes -------------------------------------------------------------------------


class Refusing(AllowAll):
    """A gatekeeper that turns everyone away with the exception it is given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def authenticate(self, request: Any) -> Principal:
        if isinstance(self.error, Unauthenticated):
            raise self.error
        return self.principal

    async def authorize(self, request: Any, principal: Principal, access: Access) -> None:
        raise self.error


async def test_each_spec_error_code(client: httpx.AsyncClient, node: Node) -> None:
    """code-1 … code-14 of the spec, each with the status it comes with."""
    image = await push_image(client, NAME, "errors", "v1")
    location = await start_upload(client, NAME)
    missing_layer = image_manifest_with(image, layer_digest=sha256(b"absent"))
    cases: list[tuple[str, int, httpx.Response]] = [
        ("BLOB_UNKNOWN", 404, await client.get(f"/v2/{NAME}/blobs/{sha256(b'absent')}")),
        (
            "BLOB_UPLOAD_INVALID",
            400,
            await client.patch(location, content=b"x", headers={"Content-Range": "nonsense"}),
        ),
        (
            "BLOB_UPLOAD_INVALID",
            416,
            await client.patch(location, content=b"x", headers={"Content-Range": "7-7"}),
        ),
        ("BLOB_UPLOAD_UNKNOWN", 404, await client.get(f"/v2/{NAME}/blobs/uploads/{uuid.uuid4()}")),
        (
            "DIGEST_INVALID",
            400,
            await client.put(location, params={"digest": sha256(b"else")}, content=b"x"),
        ),
        (
            "MANIFEST_BLOB_UNKNOWN",
            400,
            await put_manifest(client, NAME, "x", missing_layer, OCI_MANIFEST),
        ),
        (
            "MANIFEST_INVALID",
            400,
            await put_manifest(client, NAME, "x", b"{not json", OCI_MANIFEST),
        ),
        ("MANIFEST_UNKNOWN", 404, await get_manifest(client, NAME, "absent")),
        ("NAME_INVALID", 400, await client.get("/v2/UPPER/tags/list")),
        ("NAME_UNKNOWN", 404, await client.get("/v2/no/such/repo/tags/list")),
        (
            "SIZE_INVALID",
            400,
            await client.post(
                f"/v2/{NAME}/blobs/uploads/",
                params={"digest": sha256(b"abc")},
                content=b"abc",
                headers={"Content-Length": "2"},
            ),
        ),
        ("UNSUPPORTED", 405, await client.post(f"/v2/{NAME}/manifests/v1")),
    ]
    front = node.oci
    for error, code, status in (
        (Unauthenticated("who are you"), "UNAUTHORIZED", 401),
        (Forbidden("not you"), "DENIED", 403),
    ):
        front.gatekeeper = Refusing(error)
        cases.append((code, status, await get_manifest(client, NAME, "v1")))
    front.gatekeeper = Refusing(TooManyRequests("slow down", retry_after=7))
    throttled = await get_manifest(client, NAME, "v1")
    cases.append(("TOOMANYREQUESTS", 429, throttled))
    front.gatekeeper = AllowAll()

    for code, status, response in cases:
        expect_error(response, status, code)
    unauthorized = cases[-3][2]
    assert unauthorized.headers["www-authenticate"].startswith("Basic realm=")
    assert unauthorized.headers["docker-distribution-api-version"] == API_VERSION
    assert throttled.headers["retry-after"] == "7"
    assert (await get_manifest(client, NAME, "v1")).status_code == 200


def image_manifest_with(image: PushedImage, *, layer_digest: str) -> bytes:
    return image_manifest(image.config, [Descriptor(image.layers[0].media_type, layer_digest, 6)])


# -- the whole Application -------------------------------------------------------------------


async def test_the_application_serves_v2_after_its_lifespan(config: Config) -> None:
    """The composition root wires the same front: a push and pull through `Application`."""
    app = Application(config)
    to_app: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    sent: list[dict[str, Any]] = []
    ready, stop = anyio.Event(), anyio.Event()

    async def receive() -> dict[str, Any]:
        if to_app:
            return to_app.pop(0)
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: Any) -> None:
        sent.append(dict(message))
        ready.set()

    async with anyio.create_task_group() as group:
        group.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        with anyio.fail_after(30):
            await ready.wait()
        assert sent[0]["type"] == "lifespan.startup.complete", sent
        assert app.node is not None
        app.node.oci.gatekeeper = AllowAll()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as http:
            assert (await http.get("/v2/")).status_code == 200
            image = await push_image(http, "via/app", "application", "v1")
            assert (await get_manifest(http, "via/app", "v1")).content == image.manifest
            expect_error(await http.get("/elsewhere"), 404, "NOT_FOUND")
        stop.set()
    assert sent[-1]["type"] == "lifespan.shutdown.complete"


async def test_without_create_on_push_a_missing_repository_is_name_unknown(
    config: Config,
) -> None:
    closed = dataclasses.replace(config, create_on_push=False)
    node = await Node.open(closed)
    node.oci.gatekeeper = AllowAll()
    transport = httpx.ASGITransport(app=FrontApp(node.oci))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            expect_error(await http.post("/v2/not/created/blobs/uploads/"), 404, "NAME_UNKNOWN")
            single = await http.post(
                "/v2/not/created/blobs/uploads/", params={"digest": sha256(b"x")}, content=b"x"
            )
            expect_error(single, 404, "NAME_UNKNOWN")
            pushed = await put_manifest(http, "not/created", "v1", b"{}", OCI_MANIFEST)
            expect_error(pushed, 404, "NAME_UNKNOWN")
            assert (await http.get("/v2/_catalog")).json() == {"repositories": []}
    finally:
        await node.close()
