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
