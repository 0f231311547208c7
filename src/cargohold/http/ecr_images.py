"""ECR image and layer operations on the wire: parameters in, `ImageService` results out, shaped
as botocore's model shapes them (timestamps as epoch seconds, optional members left out when
empty)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from cargohold.domain.records import Manifest, Repository
from cargohold.http.download import LayerUrls
from cargohold.http.ecr import EcrCall, Handler
from cargohold.http.ecr_scanning import scan_fields
from cargohold.service.image_ids import ImageFailure, ImageId
from cargohold.service.images import ImageDetail, ImageService
from cargohold.service.layers import LayerFailure, LayerService, LayerState
from cargohold.service.scans import ScanState

#: The scan state of each listed manifest that has one (FindingsService.states).
ScanStates = Callable[[Repository, Sequence[Manifest]], Awaitable[dict[int, ScanState]]]


def _image_ids(values: list[Mapping[str, Any]] | None) -> list[ImageId]:
    return [ImageId(v.get("imageDigest"), v.get("imageTag")) for v in values or ()]


def _image_id(image_id: ImageId) -> dict[str, str]:
    shaped = {}
    if image_id.digest is not None:
        shaped["imageDigest"] = image_id.digest
    if image_id.tag is not None:
        shaped["imageTag"] = image_id.tag
    return shaped


def _failure(failure: ImageFailure) -> dict[str, Any]:
    return {
        "imageId": _image_id(failure.image_id),
        "failureCode": failure.code,
        "failureReason": failure.reason,
    }


def _manifest_text(manifest: Manifest) -> str:
    return manifest.content.decode("utf-8", errors="replace")


def _detail(repository: Repository, detail: ImageDetail) -> dict[str, Any]:
    manifest = detail.manifest
    shaped: dict[str, Any] = {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "imageDigest": manifest.digest,
    }
    if detail.tags:
        shaped["imageTags"] = list(detail.tags)
    shaped["imageSizeInBytes"] = manifest.image_size
    shaped["imagePushedAt"] = manifest.pushed_at
    shaped["imageManifestMediaType"] = manifest.media_type
    if detail.artifact_media_type:
        shaped["artifactMediaType"] = detail.artifact_media_type
    if manifest.last_pulled_at is not None:
        shaped["lastRecordedPullTime"] = manifest.last_pulled_at
    if manifest.subject_digest:
        shaped["subjectManifestDigest"] = manifest.subject_digest
    shaped["imageStatus"] = manifest.image_status
    if manifest.archived_at is not None:
        shaped["lastArchivedAt"] = manifest.archived_at
    if manifest.activated_at is not None:
        shaped["lastActivatedAt"] = manifest.activated_at
    return shaped


def _layer(layer: LayerState) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "layerDigest": layer.digest,
        "layerAvailability": "AVAILABLE" if layer.available else "UNAVAILABLE",
    }
    if layer.size is not None:
        shaped["layerSize"] = layer.size
    if layer.media_type:
        shaped["mediaType"] = layer.media_type
    return shaped


def _layer_failure(failure: LayerFailure) -> dict[str, Any]:
    return {
        "layerDigest": failure.digest,
        "failureCode": failure.code,
        "failureReason": failure.reason,
    }


def _referrer(manifest: Manifest) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "digest": manifest.digest,
        "mediaType": manifest.media_type,
        "size": manifest.size,
    }
    if manifest.artifact_type:
        shaped["artifactType"] = manifest.artifact_type
    if manifest.annotations:
        shaped["annotations"] = manifest.annotations
    shaped["artifactStatus"] = manifest.image_status
    return shaped


def _with_token(result: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        result["nextToken"] = token
    return result


class _ImageHandlers:
    def __init__(
        self,
        images: ImageService,
        layers: LayerService,
        signer: LayerUrls,
        scan_states: ScanStates | None,
    ) -> None:
        self._images = images
        self._layers = layers
        self._signer = signer
        self._scan_states = scan_states

    async def _repository(self, call: EcrCall) -> Repository:
        return await self._images.repository(call.params["repositoryName"], call.registry_id)

    async def list_images(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        status = call.params.get("filter", {})
        page = await self._images.list_images(
            repository,
            tag_status=status.get("tagStatus"),
            image_status=status.get("imageStatus"),
            max_results=call.params.get("maxResults"),
            next_token=call.params.get("nextToken"),
        )
        return _with_token({"imageIds": [_image_id(i) for i in page.items]}, page.next_token)

    async def describe_images(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        status = call.params.get("filter", {})
        page = await self._images.describe_images(
            repository,
            _image_ids(call.params.get("imageIds")),
            tag_status=status.get("tagStatus"),
            image_status=status.get("imageStatus"),
            max_results=call.params.get("maxResults"),
            next_token=call.params.get("nextToken"),
        )
        details = [_detail(repository, d) for d in page.items]
        if self._scan_states is not None:
            states = await self._scan_states(repository, [d.manifest for d in page.items])
            for shaped, detail in zip(details, page.items, strict=True):
                shaped.update(scan_fields(states.get(detail.manifest.id)))
        return _with_token({"imageDetails": details}, page.next_token)

    async def batch_get_image(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        result = await self._images.batch_get_image(
            repository,
            _image_ids(call.params["imageIds"]),
            call.params.get("acceptedMediaTypes"),
            call.principal,
        )
        images = [
            {
                "registryId": repository.registry_id,
                "repositoryName": repository.name,
                "imageId": _image_id(fetched.image_id),
                "imageManifest": _manifest_text(fetched.manifest),
                "imageManifestMediaType": fetched.manifest.media_type,
            }
            for fetched in result.items
        ]
        return {"images": images, "failures": [_failure(f) for f in result.failures]}

    async def batch_delete_image(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        result = await self._images.batch_delete_image(
            repository, _image_ids(call.params["imageIds"])
        )
        return {
            "imageIds": [_image_id(i) for i in result.items],
            "failures": [_failure(f) for f in result.failures],
        }

    async def put_image(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        tag = call.params.get("imageTag")
        manifest = await self._images.put_image(
            repository,
            call.params["imageManifest"],
            media_type=call.params.get("imageManifestMediaType"),
            tag=tag,
            digest=call.params.get("imageDigest"),
        )
        return {
            "image": {
                "registryId": repository.registry_id,
                "repositoryName": repository.name,
                "imageId": _image_id(ImageId(manifest.digest, tag)),
                "imageManifest": _manifest_text(manifest),
                "imageManifestMediaType": manifest.media_type,
            }
        }

    async def batch_check_layer_availability(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        layers, failures = await self._layers.check_layers(repository, call.params["layerDigests"])
        return {
            "layers": [_layer(layer) for layer in layers],
            "failures": [_layer_failure(f) for f in failures],
        }

    async def initiate_layer_upload(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        upload_id, part_size = await self._layers.initiate_upload(repository)
        return {"uploadId": upload_id, "partSize": part_size}

    async def upload_layer_part(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        upload_id = call.params["uploadId"]
        last = await self._layers.upload_part(
            repository,
            upload_id,
            call.params["partFirstByte"],
            call.params["partLastByte"],
            call.params["layerPartBlob"],
        )
        return {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "uploadId": upload_id,
            "lastByteReceived": last,
        }

    async def complete_layer_upload(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        upload_id = call.params["uploadId"]
        digest = await self._layers.complete_upload(
            repository, upload_id, call.params["layerDigests"]
        )
        return {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "uploadId": upload_id,
            "layerDigest": str(digest),
        }

    async def get_download_url_for_layer(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        digest = await self._layers.layer_for_download(repository, call.params["layerDigest"])
        url = await self._signer.url(repository.registry_id, repository.name, str(digest))
        return {"downloadUrl": url, "layerDigest": str(digest)}

    async def list_image_referrers(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        status = call.params.get("filter", {})
        page = await self._images.list_referrers(
            repository,
            call.params["subjectId"]["imageDigest"],
            artifact_types=status.get("artifactTypes"),
            artifact_status=status.get("artifactStatus"),
            max_results=call.params.get("maxResults"),
            next_token=call.params.get("nextToken"),
        )
        return _with_token({"referrers": [_referrer(m) for m in page.items]}, page.next_token)


def image_handlers(
    images: ImageService,
    layers: LayerService,
    signer: LayerUrls,
    scan_states: ScanStates | None = None,
) -> dict[str, Handler]:
    """The ECR operations on images and layers, keyed by operation name."""
    handlers = _ImageHandlers(images, layers, signer, scan_states)
    return {
        "ListImages": handlers.list_images,
        "DescribeImages": handlers.describe_images,
        "BatchGetImage": handlers.batch_get_image,
        "BatchDeleteImage": handlers.batch_delete_image,
        "PutImage": handlers.put_image,
        "BatchCheckLayerAvailability": handlers.batch_check_layer_availability,
        "InitiateLayerUpload": handlers.initiate_layer_upload,
        "UploadLayerPart": handlers.upload_layer_part,
        "CompleteLayerUpload": handlers.complete_layer_upload,
        "GetDownloadUrlForLayer": handlers.get_download_url_for_layer,
        "ListImageReferrers": handlers.list_image_referrers,
    }
