"""The registry's domain errors: what went wrong, in the words of the OCI spec and ECR.

Each front (OCI `/v2/`, ECR JSON) owns the table that maps these to its wire form; the domain
and service layers raise them and never speak HTTP.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error the service layer raises on purpose."""

    def __init__(self, message: str, *, detail: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NameInvalid(RegistryError):
    """A repository name that does not follow the naming rules."""


class NameUnknown(RegistryError):
    """A repository that does not exist."""


class RepositoryAlreadyExists(RegistryError):
    """A repository with this name exists already."""


class RepositoryNotEmpty(RegistryError):
    """A repository that still holds images and was not deleted with force."""


class TagInvalid(RegistryError):
    """A tag that does not follow the tag grammar, or may not be overwritten."""


class DigestInvalid(RegistryError):
    """A digest that is malformed, uses an unsupported algorithm, or does not match content."""


class BlobUnknown(RegistryError):
    """A blob the repository does not hold."""


class BlobUploadUnknown(RegistryError):
    """An upload session that does not exist (or belongs to another repository)."""


class BlobUploadInvalid(RegistryError):
    """An upload request that cannot be applied to the session."""


class RangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload stands; carries the current offset."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class SizeInvalid(RegistryError):
    """Content whose length does not match what was declared, or exceeds a limit."""


class ManifestInvalid(RegistryError):
    """A manifest that cannot be parsed or breaks the rules of its media type."""


class ManifestBlobUnknown(RegistryError):
    """A manifest that references a blob the repository does not hold."""


class ManifestUnknown(RegistryError):
    """A manifest (by tag or digest) the repository does not hold."""


class ManifestReferencedUnknown(ManifestUnknown):
    """An index that references a child manifest the repository does not hold."""


class Unsupported(RegistryError):
    """An operation the registry does not carry out."""


class ImageTagAlreadyExists(TagInvalid):
    """An immutable tag that a push tried to move to another manifest."""


class TooManyRequests(RegistryError):
    """A caller over its request rate; `retry_after` says when to try again, in seconds."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyUploads(TooManyRequests):
    """A repository holding as many open upload sessions as the registry allows."""


# -- errors only the ECR API distinguishes ---------------------------------------------------


class AccessDenied(RegistryError):
    """Policy does not allow the principal to perform the action on the resource."""


class InvalidParameter(RegistryError):
    """A parameter the model accepts but the operation cannot act on."""


class ImageNotFound(RegistryError):
    """An image (by tag or digest) the repository does not hold."""


class ImageAlreadyExists(RegistryError):
    """PutImage of a manifest and tag that are already exactly in place."""


class ImageDigestDoesNotMatch(RegistryError):
    """PutImage's imageDigest is not the digest of the manifest sent."""


class LayersNotFound(RegistryError):
    """Layers a request names that the repository does not hold."""


class ReferencedImagesNotFound(RegistryError):
    """An index whose child manifests the repository does not hold."""


class InvalidLayer(RegistryError):
    """A completed layer upload whose content does not match its digest."""


class InvalidLayerPart(RegistryError):
    """A layer part that does not continue the upload where it stands."""

    def __init__(self, message: str, *, upload_id: str, last_valid_byte: int) -> None:
        super().__init__(message)
        self.upload_id = upload_id
        self.last_valid_byte = last_valid_byte


class LayerPartTooSmall(RegistryError):
    """A layer part other than the last one smaller than the minimum part size."""


class EmptyUpload(RegistryError):
    """A layer upload completed without any part."""


class LayerAlreadyExists(RegistryError):
    """A completed layer upload of a layer the repository holds already."""


class LayerInaccessible(RegistryError):
    """A layer the repository holds that no image references (GetDownloadUrlForLayer)."""


class TemplateNotFound(RegistryError):
    """A repository creation template that does not exist."""


class TemplateAlreadyExists(RegistryError):
    """A repository creation template with this prefix exists already."""


class InvalidTagParameter(RegistryError):
    """A resource tag key or value that breaks the tagging rules."""


class TooManyTags(RegistryError):
    """More than 50 tags on one resource."""


class LimitExceeded(RegistryError):
    """A quota, such as one basic scan per image per day."""


class ScanNotFound(RegistryError):
    """An image that has never been scanned (DescribeImageScanFindings)."""


class UnsupportedImageType(RegistryError):
    """An image the scanner cannot scan at all (StartImageScan)."""


class RepositoryPolicyNotFound(RegistryError):
    """A repository that has no repository policy (Get/DeleteRepositoryPolicy)."""


class RegistryPolicyNotFound(RegistryError):
    """A registry that has no registry policy (Get/DeleteRegistryPolicy)."""


class LifecyclePolicyNotFound(RegistryError):
    """The repository has no lifecycle policy."""


class LifecyclePolicyPreviewNotFound(RegistryError):
    """The repository has no lifecycle policy preview."""


class LifecyclePolicyPreviewInProgress(RegistryError):
    """A preview of the repository is still being computed."""


class ExclusionAlreadyExists(RegistryError):
    """The principal is registered as a pull-time update exclusion already."""


class ExclusionNotFound(RegistryError):
    """The principal is not registered as a pull-time update exclusion."""


class ImageStorageClassUpdateNotSupported(RegistryError):
    """The image cannot move to the storage class asked for (an index's child, a referrer)."""
