"""The ECR JSON error table: domain errors to AWS `__type` names, and constraint violations as
ECR answers them."""

from __future__ import annotations

from typing import Any

from botocore.model import ServiceModel

from cargohold.domain import errors
from cargohold.http.awsservice import AwsError, ValidationFailed, Violation

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
    (errors.LifecyclePolicyNotFound, "LifecyclePolicyNotFoundException"),
    (errors.LifecyclePolicyPreviewNotFound, "LifecyclePolicyPreviewNotFoundException"),
    (errors.LifecyclePolicyPreviewInProgress, "LifecyclePolicyPreviewInProgressException"),
    (errors.ExclusionAlreadyExists, "ExclusionAlreadyExistsException"),
    (errors.ExclusionNotFound, "ExclusionNotFoundException"),
    (errors.ImageStorageClassUpdateNotSupported, "ImageStorageClassUpdateNotSupportedException"),
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


def ecr_invalid(exc: ValidationFailed, model: ServiceModel) -> AwsError:
    """A request that breaks the model's constraints, as ECR answers it.

    The operations that list `ValidationException` among their errors answer it, in the words
    of AWS's validation ("1 validation error detected: Value 'X' at 'prefix' failed to satisfy
    constraint: …"). The others answer `InvalidParameterException` about the first fault, in
    ECR's own words: "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must
    satisfy regular expression '…''"."""
    operation = model.operation_model(exc.operation) if exc.operation else None
    listed = {shape.name for shape in operation.error_shapes} if operation else set()
    if "ValidationException" in listed or not exc.violations:
        return AwsError("ValidationException", exc.message)
    first = exc.violations[0]
    return AwsError(
        "InvalidParameterException",
        f"Invalid parameter at '{first.path}' failed to satisfy constraint: '{_ecr_rule(first)}'",
    )


def _ecr_rule(violation: Violation) -> str:
    """ECR states a broken pattern and a string's length without the "Member" AWS's validation
    puts first; the other rules as AWS's validation does."""
    if violation.kind == "pattern":
        return f"must satisfy regular expression '{violation.pattern}'"
    if violation.kind == "length":
        return violation.rule.removeprefix("Member ")
    return violation.rule
