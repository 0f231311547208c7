"""The ECR JSON error table: domain errors to AWS `__type` names."""

from __future__ import annotations

from typing import Any

from botocore.model import ServiceModel

from cargohold.domain import errors
from cargohold.http.awsservice import AwsError

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
    (errors.TooManyUploads, "LimitExceededException"),
    (errors.ScanNotFound, "ScanNotFoundException"),
    (errors.UnsupportedImageType, "UnsupportedImageTypeException"),
    (errors.Unsupported, "UnsupportedOperationException"),
    (errors.RegistryError, "InvalidParameterException"),
]


def ecr_error(exc: errors.RegistryError, model: ServiceModel | None = None) -> AwsError:
    """The `__type` ECR answers a domain error with, and the fields it carries beside it."""
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
            return AwsError(aws_type, exc.message, fields=fields)
    return AwsError("ServerException", "internal error", 500)
