"""Presigned layer downloads: the time-limited URLs GetDownloadUrlForLayer hands out, and the
route that serves them to anyone who holds one, with no other credentials.

A URL names what it serves in its path and proves it in its query:

    <public url>/_download/<registry id>/<repository>/blobs/<digest>
        ?X-Cargohold-Expires=<epoch seconds>&X-Cargohold-Signature=<urlsafe base64>

The signature is HMAC-SHA256 over registry id, repository, digest and expiry, under a key derived
from the registry's master key (`SecretBox.derive_key(DOWNLOAD_KEY_PURPOSE)`), so any node of a
scaled-out registry verifies what another signed, and a URL cannot be bent to another blob,
repository or lifetime. Like an S3 presigned URL, it keeps working until it expires even if the
caller's permissions change; the blob itself must still be in the repository.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from cargohold.domain.digest import Digest
from cargohold.domain.errors import RegistryError
from cargohold.http.blobstream import blob_response
from cargohold.ports import StorageDriver
from cargohold.service.content import ContentService
from cargohold.service.paths import blob_key

#: The purpose string the composition root derives the signing key with.
DOWNLOAD_KEY_PURPOSE = "layer-download-url"
#: Where the route lives; the composition root sends every path under it here.
PREFIX = "/_download/"
DEFAULT_EXPIRES_IN = 3600

_EXPIRES = "X-Cargohold-Expires"
_SIGNATURE = "X-Cargohold-Signature"
_PATH = re.compile(r"^/_download/(?P<registry>[0-9]{12})/(?P<name>.+)/blobs/(?P<digest>[^/]+)$")


def _is_epoch(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


class DownloadDenied(Exception):
    """A download URL that was not signed by this registry, was altered, or has expired."""


class DownloadSigner:
    def __init__(
        self,
        key: bytes,
        base_url: str,
        clock: Callable[[], float],
        *,
        expires_in: int = DEFAULT_EXPIRES_IN,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the download signing key must be at least 16 bytes")
        self._key = key
        self._base_url = base_url.rstrip("/")
        self._clock = clock
        self.expires_in = expires_in

    def _signature(self, registry_id: str, repository: str, digest: str, expires: int) -> str:
        message = f"{registry_id}\n{repository}\n{digest}\n{expires}".encode()
        mac = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def url(self, registry_id: str, repository: str, digest: str) -> str:
        """A URL that serves the blob until `expires_in` seconds from now."""
        expires = int(self._clock()) + self.expires_in
        query = urlencode(
            {
                _EXPIRES: str(expires),
                _SIGNATURE: self._signature(registry_id, repository, digest, expires),
            }
        )
        path = quote(f"{PREFIX}{registry_id}/{repository}/blobs/{digest}", safe="/:")
        return f"{self._base_url}{path}?{query}"

    def verify(
        self,
        registry_id: str,
        repository: str,
        digest: str,
        expires_text: str | None,
        signature: str | None,
    ) -> None:
        """Raise DownloadDenied unless this registry signed exactly this URL and it is current."""
        # ASCII digits only: str.isdigit also accepts '²', which int() refuses.
        if not expires_text or not signature or not _is_epoch(expires_text):
            raise DownloadDenied("Request is missing a valid signature")
        expires = int(expires_text)
        expected = self._signature(registry_id, repository, digest, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise DownloadDenied(
                "The request signature we calculated does not match the signature you provided"
            )
        if self._clock() >= expires:
            raise DownloadDenied("Request has expired")


class LayerUrls:
    """What GetDownloadUrlForLayer answers: with `redirect`, a presigned URL of the object
    store, as ECR answers one of S3; otherwise (or when the driver has none) a URL of the
    registry's own `/_download/` route."""

    def __init__(self, signer: DownloadSigner, storage: StorageDriver, *, redirect: bool) -> None:
        self.signer = signer
        self._storage = storage
        self._redirect = redirect

    async def url(self, registry_id: str, repository: str, digest: str) -> str:
        if self._redirect:
            key = blob_key(Digest.parse(digest))
            found = await self._storage.redirect_url(key, self.signer.expires_in)
            if found is not None:
                return found
        return self.signer.url(registry_id, repository, digest)


def _error(code: str, message: str, status: int) -> Response:
    # S3's presigned-URL error shape, which download tools already know how to show.
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status, media_type="application/xml")


class DownloadRoute:
    """`GET|HEAD /_download/…`: the blob a valid presigned URL names."""

    def __init__(
        self, signer: DownloadSigner, content: ContentService, storage: StorageDriver
    ) -> None:
        self._signer = signer
        self._content = content
        self._storage = storage

    async def __call__(self, request: Request) -> Response:
        match = _PATH.match(request.url.path)
        if match is None:
            return _error("NoSuchKey", "The specified key does not exist.", 404)
        if request.method not in ("GET", "HEAD"):
            return _error("MethodNotAllowed", "The specified method is not allowed.", 405)
        registry_id, name, digest = match.group("registry", "name", "digest")
        try:
            self._signer.verify(
                registry_id,
                name,
                digest,
                request.query_params.get(_EXPIRES),
                request.query_params.get(_SIGNATURE),
            )
        except DownloadDenied as exc:
            return _error("AccessDenied", str(exc), 403)
        try:
            repository = await self._content.repository(name, registry_id)
            blob = await self._content.blob(repository, digest)
        except RegistryError:
            return _error("NoSuchKey", "The specified key does not exist.", 404)
        headers = {"Docker-Content-Digest": str(blob.digest), "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(blob.size)
            return Response(None, 200, headers=headers, media_type="application/octet-stream")
        return await blob_response(request, self._storage, blob, redirect=False)
