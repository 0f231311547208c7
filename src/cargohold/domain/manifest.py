"""Manifest media types, parsing and the structural rules a registry enforces on push.

Manifests are stored and served as the exact bytes pushed; parsing only extracts what the
registry must know: which blobs and child manifests they reference, the subject, the artifact type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cargohold.domain import jsondoc
from cargohold.domain.digest import Digest
from cargohold.domain.errors import DigestInvalid, ManifestInvalid

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = IMAGE_MANIFESTS | INDEXES

#: Layers a registry is not expected to hold: they carry `urls` to fetch them from elsewhere.
_FOREIGN_LAYERS = (
    "application/vnd.oci.image.layer.nondistributable.",
    "application/vnd.docker.image.rootfs.foreign.",
)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: RFC 6838 caps a media type's name at 127 characters on each side of the `/`.
MAX_MEDIA_TYPE = 255


def is_media_type(value: object) -> bool:
    """Whether `value` can be a media type: a short string of printable characters (control
    characters, NUL among them, could neither be stored nor matched)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_MEDIA_TYPE
        and value.isprintable()
        and value.isascii()
    )


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()

    @property
    def is_foreign(self) -> bool:
        return bool(self.urls) and self.media_type.startswith(_FOREIGN_LAYERS)


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES

    @property
    def blob_references(self) -> tuple[Descriptor, ...]:
        """Blobs the repository must hold for this manifest to be accepted."""
        refs = ((self.config,) if self.config else ()) + self.layers
        return tuple(d for d in refs if not d.is_foreign)

    @property
    def effective_artifact_type(self) -> str | None:
        """The artifact type the referrers API reports: artifactType, else the config type."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None:
            return self.config.media_type
        return None


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where}: a descriptor must be an object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}: mediaType is required")
    if not is_media_type(media_type):
        raise ManifestInvalid(f"{where}: mediaType is not a media type")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}: digest is required")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}: size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}: {exc.message}") from None
    artifact_type = value.get("artifactType")
    annotations = value.get("annotations")
    platform = value.get("platform")
    urls = value.get("urls") or ()
    if artifact_type is not None and not is_media_type(artifact_type):
        raise ManifestInvalid(f"{where}: artifactType must be a media type")
    if annotations is not None and not _is_string_map(annotations):
        raise ManifestInvalid(f"{where}: annotations must map strings to strings")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestInvalid(f"{where}: platform must be an object")
    if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}: urls must be a list of strings")
    return Descriptor(media_type, parsed, size, artifact_type, annotations, platform, tuple(urls))


def _is_string_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _descriptor_list(document: dict[str, Any], key: str, required: bool) -> tuple[Descriptor, ...]:
    items = document.get(key)
    if items is None:
        if required:
            raise ManifestInvalid(f"{key} is required")
        return ()
    if not isinstance(items, list):
        raise ManifestInvalid(f"{key} must be a list")
    return tuple(_descriptor(item, f"{key}[{i}]") for i, item in enumerate(items))


def detect_media_type(document: dict[str, Any], content_type: str | None) -> str:
    """The manifest's media type, from its body and the request's Content-Type.

    A body `mediaType` that contradicts the Content-Type is an error; with neither, the shape
    decides (an OCI index has `manifests`, an OCI image manifest has `config`).
    """
    declared = content_type.split(";", 1)[0].strip().lower() if content_type else ""
    body_type = document.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestInvalid("mediaType must be a string")
    if declared in MANIFEST_MEDIA_TYPES:
        if body_type and body_type != declared:
            raise ManifestInvalid(
                f"manifest mediaType {body_type} does not match Content-Type {declared}"
            )
        return declared
    if body_type:
        if body_type not in MANIFEST_MEDIA_TYPES:
            raise ManifestInvalid(f"unsupported manifest media type {body_type}")
        return body_type
    if declared and declared not in ("application/json", "application/octet-stream"):
        raise ManifestInvalid(f"unsupported manifest media type {declared}")
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document:
        return OCI_MANIFEST
    raise ManifestInvalid("cannot tell the manifest's media type")


def parse_manifest(raw: bytes, content_type: str | None) -> ParsedManifest:
    """Parse and validate a pushed manifest; raise ManifestInvalid for anything malformed."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestInvalid(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = jsondoc.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    media_type = detect_media_type(document, content_type)
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not is_media_type(artifact_type):
        raise ManifestInvalid("artifactType must be a media type")
    annotations = document.get("annotations") or {}
    if not _is_string_map(annotations):
        raise ManifestInvalid("annotations must map strings to strings")
    subject = (
        _descriptor(document["subject"], "subject") if document.get("subject") is not None else None
    )
    if media_type in INDEXES:
        children = _descriptor_list(document, "manifests", required=True)
        for child in children:
            if child.media_type not in MANIFEST_MEDIA_TYPES and media_type == DOCKER_MANIFEST_LIST:
                raise ManifestInvalid(f"unsupported child manifest type {child.media_type}")
        return ParsedManifest(media_type, None, (), children, subject, artifact_type, annotations)
    if "config" not in document:
        raise ManifestInvalid("config is required")
    config = _descriptor(document["config"], "config")
    layers = _descriptor_list(document, "layers", required=media_type == DOCKER_MANIFEST)
    if media_type == DOCKER_MANIFEST and (subject or artifact_type):
        raise ManifestInvalid("Docker schema 2 manifests carry no subject or artifactType")
    if media_type == OCI_MANIFEST and config.media_type == OCI_EMPTY and not artifact_type:
        raise ManifestInvalid("artifactType is required when config is the empty descriptor")
    return ParsedManifest(media_type, config, layers, (), subject, artifact_type, annotations)


def negotiate(media_type: str, accept_headers: list[str]) -> bool:
    """True when a stored manifest of `media_type` may be served to a client with these Accepts.

    No Accept header, or a wildcard, accepts anything; otherwise the type must be listed.
    """
    accepted: set[str] = set()
    for header in accept_headers:
        for item in header.split(","):
            value = item.split(";", 1)[0].strip().lower()
            if value:
                accepted.add(value)
    if not accepted or "*/*" in accepted or "application/*" in accepted:
        return True
    return media_type in accepted or (
        "application/json" in accepted and media_type not in MANIFEST_MEDIA_TYPES
    )
