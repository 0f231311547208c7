"""The OCI distribution error table: domain errors to spec codes and HTTP statuses."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from cargohold.domain import errors

# Most specific class first: the first match wins.
_TABLE: list[tuple[type[errors.RegistryError], str, int]] = [
    (errors.NameInvalid, "NAME_INVALID", 400),
    (errors.NameUnknown, "NAME_UNKNOWN", 404),
    (errors.ImageTagAlreadyExists, "TAG_INVALID", 400),
    (errors.TagInvalid, "TAG_INVALID", 400),
    (errors.DigestInvalid, "DIGEST_INVALID", 400),
    (errors.BlobUnknown, "BLOB_UNKNOWN", 404),
    (errors.BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
    (errors.RangeInvalid, "BLOB_UPLOAD_INVALID", 416),
    (errors.BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400),
    (errors.SizeInvalid, "SIZE_INVALID", 400),
    (errors.ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
    (errors.ManifestReferencedUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
    (errors.ManifestUnknown, "MANIFEST_UNKNOWN", 404),
    (errors.ManifestInvalid, "MANIFEST_INVALID", 400),
    (errors.Unsupported, "UNSUPPORTED", 405),
    (errors.TooManyRequests, "TOOMANYREQUESTS", 429),
]


def error_response(
    code: str,
    message: str,
    status: int,
    *,
    detail: Any = None,
    headers: dict[str, str] | None = None,
    also: tuple[str, ...] = (),
) -> Response:
    """The spec's error body; `also` adds entries with further codes for the same error."""
    entries: list[dict[str, Any]] = []
    for each in (code, *also):
        entry: dict[str, Any] = {"code": each, "message": message}
        if detail is not None:
            entry["detail"] = detail
        entries.append(entry)
    body = json.dumps({"errors": entries}).encode()
    return Response(body, status, headers=headers, media_type="application/json")


def from_registry_error(exc: errors.RegistryError) -> Response:
    for kind, code, status in _TABLE:
        if isinstance(exc, kind):
            headers: dict[str, str] = {}
            if isinstance(exc, errors.RangeInvalid):
                headers["Range"] = f"0-{max(exc.offset - 1, 0)}"
            if isinstance(exc, errors.TooManyRequests) and exc.retry_after is not None:
                headers["Retry-After"] = str(exc.retry_after)
            # The spec: a manifest refused for a reference the registry lacks MUST get
            # MANIFEST_BLOB_UNKNOWN, whether the reference is a blob or a child manifest;
            # MANIFEST_UNKNOWN beside it says the missing thing is a manifest.
            also = (
                ("MANIFEST_UNKNOWN",) if isinstance(exc, errors.ManifestReferencedUnknown) else ()
            )
            return error_response(
                code, exc.message, status, detail=exc.detail, headers=headers, also=also
            )
    return error_response("UNKNOWN", exc.message, 500)
