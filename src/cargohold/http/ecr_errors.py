"""The ECR JSON error table: domain errors to AWS `__type` names."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from cargohold.domain import errors

CONTENT_TYPE = "application/x-amz-json-1.1"

# Most specific class first: the first match wins.
_TABLE: list[tuple[type[errors.RegistryError], str]] = [
    (errors.AccessDenied, "AccessDeniedException"),
    (errors.NameUnknown, "RepositoryNotFoundException"),
    (errors.RepositoryAlreadyExists, "RepositoryAlreadyExistsException"),
    (errors.RepositoryNotEmpty, "RepositoryNotEmptyException"),
    (errors.ImageTagAlreadyExists, "ImageTagAlreadyExistsException"),
    (errors.ImageNotFound, "ImageNotFoundException"),
    (errors.ImageAlreadyExists, "ImageAlreadyExistsException"),
    (errors.ImageDigestDoesNotMatch, "ImageDigestDoesNotMatchException"),
    (errors.LayersNotFound, "LayersNotFoundException"),
    (errors.ManifestBlobUnknown, "LayersNotFoundException"),
    (errors.ReferencedImagesNotFound, "ReferencedImagesNotFoundException"),
    (errors.ManifestReferencedUnknown, "ReferencedImagesNotFoundException"),
    (errors.InvalidLayerPart, "InvalidLayerPartException"),
    (errors.LayerPartTooSmall, "LayerPartTooSmallException"),
    (errors.EmptyUpload, "EmptyUploadException"),
    (errors.LayerAlreadyExists, "LayerAlreadyExistsException"),
    (errors.LayerInaccessible, "LayerInaccessibleException"),
    (errors.InvalidLayer, "InvalidLayerException"),
    (errors.BlobUploadUnknown, "UploadNotFoundException"),
    (errors.TemplateNotFound, "TemplateNotFoundException"),
    (errors.RepositoryPolicyNotFound, "RepositoryPolicyNotFoundException"),
    (errors.RegistryPolicyNotFound, "RegistryPolicyNotFoundException"),
    (errors.TemplateAlreadyExists, "TemplateAlreadyExistsException"),
    (errors.InvalidTagParameter, "InvalidTagParameterException"),
    (errors.TooManyTags, "TooManyTagsException"),
    (errors.LimitExceeded, "LimitExceededException"),
    (errors.ScanNotFound, "ScanNotFoundException"),
    (errors.UnsupportedImageType, "UnsupportedImageTypeException"),
    (errors.Unsupported, "UnsupportedOperationException"),
    (errors.RegistryError, "InvalidParameterException"),
]


def aws_error(
    aws_type: str, message: str, status: int = 400, *, request_id: str, **fields: Any
) -> Response:
    body = json.dumps({"__type": aws_type, "message": message, **fields}).encode()
    return Response(
        body,
        status,
        headers={"x-amzn-RequestId": request_id},
        media_type=CONTENT_TYPE,
    )


def from_registry_error(exc: errors.RegistryError, *, request_id: str) -> Response:
    for kind, aws_type in _TABLE:
        if isinstance(exc, kind):
            fields: dict[str, Any] = {}
            if isinstance(exc, errors.InvalidLayerPart):
                fields = {
                    "uploadId": exc.upload_id,
                    "lastValidByteReceived": exc.last_valid_byte,
                }
            if isinstance(exc.detail, dict):
                fields.update({k: v for k, v in exc.detail.items() if k not in ("digest",)})
            return aws_error(aws_type, exc.message, request_id=request_id, **fields)
    return aws_error("ServerException", "internal error", 500, request_id=request_id)
