"""ECR's layer operations through the service layer, on SQLite and PostgreSQL: availability,
downloads and the layer-upload API over the shared upload machinery."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cargohold.domain.errors import (
    BlobUploadUnknown,
    EmptyUpload,
    InvalidLayer,
    InvalidLayerPart,
    LayerAlreadyExists,
    LayerInaccessible,
    LayerPartTooSmall,
    LayersNotFound,
)
from cargohold.domain.manifest import OCI_MANIFEST
from cargohold.domain.records import Repository
from cargohold.metadata.store import MetadataStore
from cargohold.service.content import ContentService
from cargohold.service.images import ImageService
from cargohold.service.layers import MIN_PART_SIZE, PART_SIZE, LayerService
from cargohold.service.uploads import UploadService

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("db_url", ["sqlite_url", "postgres_url"], indirect=True),
]

CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def layers(store: MetadataStore, uploads: UploadService) -> LayerService:
    return LayerService(store, uploads)


@pytest.fixture
def images(content: ContentService, store: MetadataStore) -> ImageService:
    return ImageService(content, store)


async def push_blob(uploads: UploadService, repo: Repository, data: bytes) -> dict[str, Any]:
    await uploads.monolithic(repo, sha(data), once(data), len(data))
    return {"digest": sha(data), "size": len(data)}


async def put_image(
    images: ImageService, uploads: UploadService, repo: Repository, seed: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An image whose config and layer are in `repo`; (config, layer) descriptors."""
    config = await push_blob(uploads, repo, json.dumps({"seed": seed}).encode())
    layer = await push_blob(uploads, repo, f"layer {seed}".encode() * 10)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG, **config},
        "layers": [{"mediaType": LAYER, **layer}],
    }
    await images.put_image(repo, json.dumps(document), tag=seed)
    return config, layer


async def test_check_layers(
    layers: LayerService, images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    config, layer = await put_image(images, uploads, repo, "a")
    loose = await push_blob(uploads, repo, b"not in any image")
    states, failures = await layers.check_layers(
        repo, [layer["digest"], config["digest"], loose["digest"], sha(b"nope"), "sha256:xyz", ""]
    )
    assert [(s.digest, s.available, s.size, s.media_type) for s in states] == [
        (layer["digest"], True, layer["size"], LAYER),
        (config["digest"], True, config["size"], CONFIG),
        (loose["digest"], True, loose["size"], None),
        (sha(b"nope"), False, None, None),
    ]
    assert [(f.digest, f.code) for f in failures] == [
        ("sha256:xyz", "InvalidLayerDigest"),
        ("", "MissingLayerDigest"),
    ]


async def test_layer_for_download(
    layers: LayerService, images: ImageService, uploads: UploadService, repo: Repository
) -> None:
    _, layer = await put_image(images, uploads, repo, "a")
    assert str(await layers.layer_for_download(repo, layer["digest"])) == layer["digest"]
    with pytest.raises(LayersNotFound):
        await layers.layer_for_download(repo, sha(b"nope"))
    loose = await push_blob(uploads, repo, b"loose")
    with pytest.raises(LayerInaccessible) as caught:
        await layers.layer_for_download(repo, loose["digest"])
    assert caught.value.message.startswith("The specified layer is not available")


async def upload(layers: LayerService, repo: Repository, *parts: bytes) -> str:
    upload_id, part_size = await layers.initiate_upload(repo)
    assert part_size == PART_SIZE
    offset = 0
    for part in parts:
        last = await layers.upload_part(repo, upload_id, offset, offset + len(part) - 1, part)
        offset += len(part)
        assert last == offset - 1
    return upload_id


async def test_layer_upload_in_parts(
    layers: LayerService, uploads: UploadService, repo: Repository
) -> None:
    first, second = b"a" * MIN_PART_SIZE, b"tail"
    upload_id = await upload(layers, repo, first, second)
    digest = await layers.complete_upload(repo, upload_id, [sha(first + second)])
    assert str(digest) == sha(first + second)
    states, _ = await layers.check_layers(repo, [str(digest)])
    assert states[0].available and states[0].size == len(first + second)
    with pytest.raises(BlobUploadUnknown):  # the upload is spent
        await layers.complete_upload(repo, upload_id, [str(digest)])


async def test_a_part_that_does_not_continue_the_upload_is_invalid_layer_part(
    layers: LayerService, repo: Repository
) -> None:
    upload_id = await upload(layers, repo, b"0123456789")
    for first, last, data in ((5, 9, b"56789"), (11, 12, b"ab"), (10, 15, b"ab"), (10, 9, b"")):
        with pytest.raises(InvalidLayerPart) as caught:
            await layers.upload_part(repo, upload_id, first, last, data)
        assert caught.value.last_valid_byte == 9
        assert caught.value.upload_id == upload_id
    assert await layers.upload_part(repo, upload_id, 10, 11, b"ab") == 11
    fresh, _ = await layers.initiate_upload(repo)
    with pytest.raises(InvalidLayerPart) as caught:
        await layers.upload_part(repo, fresh, 1, 1, b"x")
    assert caught.value.last_valid_byte == -1


async def test_complete_layer_upload_errors(
    layers: LayerService, uploads: UploadService, repo: Repository
) -> None:
    empty, _ = await layers.initiate_upload(repo)
    with pytest.raises(EmptyUpload):
        await layers.complete_upload(repo, empty, [sha(b"")])

    small = await upload(layers, repo, b"small", b"parts")
    with pytest.raises(LayerPartTooSmall):
        await layers.complete_upload(repo, small, [sha(b"smallparts")])

    wrong = await upload(layers, repo, b"content")
    with pytest.raises(InvalidLayer):
        await layers.complete_upload(repo, wrong, [sha(b"other content")])

    existing = await push_blob(uploads, repo, b"already here")
    again = await upload(layers, repo, b"already here")
    with pytest.raises(LayerAlreadyExists):
        await layers.complete_upload(repo, again, [existing["digest"]])

    with pytest.raises(BlobUploadUnknown) as caught:
        await layers.complete_upload(repo, "00000000-0000-4000-8000-000000000000", [sha(b"")])
    assert "The upload with id '00000000-0000-4000-8000-000000000000' does not exist" in (
        caught.value.message
    )
    with pytest.raises(BlobUploadUnknown):
        await layers.upload_part(repo, "00000000-0000-4000-8000-000000000000", 0, 0, b"x")


async def test_an_upload_belongs_to_its_repository(
    layers: LayerService, content: ContentService, repo: Repository
) -> None:
    upload_id = await upload(layers, repo, b"data")
    other = await content.repository_for_push("team/other")
    with pytest.raises(BlobUploadUnknown):
        await layers.upload_part(other, upload_id, 4, 4, b"x")
    with pytest.raises(BlobUploadUnknown):
        await layers.complete_upload(other, upload_id, [sha(b"data")])
