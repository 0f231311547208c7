"""The OCI Distribution API v1.1 front (`/v2/`): wire to service and back, nothing more.

Each route authenticates the caller, finds the registry (account) the request addresses (the
gatekeeper reads it from the host name), authorizes the caller for the ECR action AWS maps the
route to on that registry's repository, calls one service operation and renders the answer.
A push that would create its repository (CREATE_ON_PUSH) is also authorized as
`ecr:CreateRepository`, and a cross-repository mount as `ecr:GetDownloadUrlForLayer` on the
source. Business rules live in service/ and domain/.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cargohold.domain.errors import (
    NameInvalid,
    RegistryError,
    SizeInvalid,
    TagInvalid,
)
from cargohold.domain.manifest import MAX_MANIFEST_BYTES, OCI_INDEX, is_media_type
from cargohold.domain.names import MAX_NAME, validate_repository_name
from cargohold.domain.principal import Principal
from cargohold.domain.records import Repository
from cargohold.http.blobstream import blob_response
from cargohold.http.oci_errors import error_response, from_registry_error
from cargohold.http.oci_params import (
    MAX_TAG,
    BadPagination,
    content_length,
    content_range,
    page,
)
from cargohold.http.oci_routes import ACTIONS, BASE, CATALOG, action, check_params, match_route
from cargohold.http.unavailable import HEADERS, unavailable_message
from cargohold.ports import StorageDriver, Unavailable
from cargohold.service.content import ContentService
from cargohold.service.uploads import UploadService

log = logging.getLogger(__name__)

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


class Unauthenticated(Exception):
    """No credentials, or credentials that do not hold; answered with 401 and a challenge."""


class Forbidden(Exception):
    """An authenticated principal that policy does not allow; answered with 403 DENIED."""


@dataclass(frozen=True, slots=True)
class Access:
    """What one `/v2/` request asks for: an ECR action on a repository of a registry."""

    action: str
    registry_id: str
    #: None for the registry's catalog.
    repository: str | None
    #: The request's own parameters (reference, digest, upload), for the audit log.
    parameters: Mapping[str, str] = field(default_factory=dict)


class Gatekeeper(Protocol):
    """Authentication and authorization for `/v2/`, supplied by the composition root."""

    async def authenticate(self, request: Request) -> Principal: ...

    def registry_id(self, request: Request, principal: Principal) -> str:
        """The registry (account) the request addresses."""
        ...

    async def authorize(self, request: Request, principal: Principal, access: Access) -> None:
        """Raise Forbidden unless `principal` may have `access`."""
        ...

    def challenge(self) -> str:
        """The WWW-Authenticate value sent with 401."""
        ...


@dataclass(frozen=True, slots=True)
class Target:
    """Who a routed request comes from and which registry it addresses."""

    principal: Principal
    registry_id: str


def _next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?{urlencode({"last": last, "n": n})}>; rel="next"'


def _upload_headers(name: str, upload_id: str, offset: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(offset - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


class OciFront:
    def __init__(
        self,
        content: ContentService,
        uploads: UploadService,
        storage: StorageDriver,
        gatekeeper: Gatekeeper,
        *,
        redirect: bool = False,
    ) -> None:
        self.content = content
        self.uploads = uploads
        self.storage = storage
        self.gatekeeper = gatekeeper
        #: Blob GETs answer 307 to the store's presigned URL when the driver has one.
        self.redirect = redirect

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except Unauthenticated as exc:
            return error_response(
                "UNAUTHORIZED",
                str(exc) or "authentication required",
                401,
                headers={"WWW-Authenticate": self.gatekeeper.challenge(), **API_VERSION},
            )
        except Forbidden as exc:
            return error_response("DENIED", str(exc) or "access denied", 403)
        except RegistryError as exc:
            return from_registry_error(exc)
        except BadPagination as exc:
            return error_response(
                "PAGINATION_NUMBER_INVALID", f"invalid number of results requested: {exc}", 400
            )
        except ClientDisconnect:
            log.info("client disconnected during %s %s", request.method, request.url.path)
            return Response(status_code=400)
        except Unavailable as exc:
            return error_response("UNAVAILABLE", unavailable_message(exc), 503, headers=HEADERS)

    async def _dispatch(self, request: Request) -> Response:
        method = request.method
        found = match_route(request.scope["path"], method)
        if found is None:
            return error_response("NOT_FOUND", "no such endpoint", 404)
        if found.handler is None:
            return self._unsupported()
        principal = await self.gatekeeper.authenticate(request)
        check_params(found)
        if found.handler == BASE:
            return Response(b"{}", 200, headers=API_VERSION, media_type="application/json")
        registry_id = self.gatekeeper.registry_id(request, principal)
        if found.name is None:
            await self.gatekeeper.authorize(
                request, principal, Access(ACTIONS[CATALOG], registry_id, None)
            )
            return await self.catalog(request, registry_id)
        access = Access(action(found.handler, method), registry_id, found.name, found.params)
        await self.gatekeeper.authorize(request, principal, access)
        handler: Callable[..., Awaitable[Response]] = getattr(self, found.handler)
        target = Target(principal, registry_id)
        return await handler(request, found.name, target=target, **found.params)

    @staticmethod
    def _unsupported() -> Response:
        return error_response("UNSUPPORTED", "the operation is unsupported", 405)

    # -- listings ---------------------------------------------------------------------------

    async def catalog(self, request: Request, registry_id: str) -> Response:
        n, last = page(request, MAX_NAME, NameInvalid)
        limit = None if n is None else n + 1
        names = (
            []
            if n == 0
            else await self.content.catalog(after=last, limit=limit, registry_id=registry_id)
        )
        headers = {}
        if n is not None and len(names) > n:
            names = names[:n]
            headers["Link"] = _next_link("/v2/_catalog", n, names[-1])
        body = json.dumps({"repositories": names}).encode()
        return Response(body, 200, headers=headers, media_type="application/json")

    async def tags(self, request: Request, name: str, *, target: Target) -> Response:
        n, last = page(request, MAX_TAG, TagInvalid)
        repository = await self.content.repository(name, target.registry_id)
        limit = None if n is None else n + 1
        found = [] if n == 0 else await self.content.tags(repository, after=last, limit=limit)
        headers = {}
        if n is not None and len(found) > n:
            found = found[:n]
            headers["Link"] = _next_link(f"/v2/{name}/tags/list", n, found[-1])
        body = json.dumps({"name": name, "tags": found}).encode()
        return Response(body, 200, headers=headers, media_type="application/json")

    # -- manifests --------------------------------------------------------------------------

    async def get_manifest(
        self, request: Request, name: str, *, target: Target, reference: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        accept = request.headers.getlist("accept")
        manifest = await self.content.manifest(repository, reference, accept=accept or None)
        headers = {
            "Docker-Content-Digest": manifest.digest,
            "Content-Length": str(manifest.size),
            "ETag": f'"{manifest.digest}"',
        }
        if request.method == "HEAD":
            return Response(None, 200, headers=headers, media_type=manifest.media_type)
        await self.content.record_pull(manifest, target.principal, target.registry_id)
        return Response(manifest.content, 200, headers=headers, media_type=manifest.media_type)

    async def put_manifest(
        self, request: Request, name: str, *, target: Target, reference: str
    ) -> Response:
        length = content_length(request)
        if length is not None and length > MAX_MANIFEST_BYTES:
            return error_response(
                "SIZE_INVALID", f"manifest is larger than {MAX_MANIFEST_BYTES} bytes", 413
            )
        raw = await self._read_limited(request, MAX_MANIFEST_BYTES)
        if raw is None:
            return error_response(
                "SIZE_INVALID", f"manifest is larger than {MAX_MANIFEST_BYTES} bytes", 413
            )
        if length is not None and len(raw) != length:
            raise SizeInvalid(f"body has {len(raw)} bytes, Content-Length says {length}")
        repository = await self._repository_for_push(request, name, target)
        pushed = await self.content.put_manifest(
            repository, reference, raw, request.headers.get("content-type")
        )
        headers = {
            "Location": f"/v2/{name}/manifests/{pushed.manifest.digest}",
            "Docker-Content-Digest": pushed.manifest.digest,
        }
        if pushed.parsed.subject is not None:
            headers["OCI-Subject"] = str(pushed.parsed.subject.digest)
        return Response(None, 201, headers=headers)

    @staticmethod
    async def _read_limited(request: Request, limit: int) -> bytes | None:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                return None
        return bytes(data)

    async def delete_manifest(
        self, request: Request, name: str, *, target: Target, reference: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        await self.content.delete_manifest(repository, reference)
        return Response(None, 202)

    async def referrers(
        self, request: Request, name: str, *, target: Target, digest: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        artifact_type = request.query_params.get("artifactType") or None
        # No manifest has an artifact type that is no media type.
        found = (
            await self.content.referrers(repository, digest, artifact_type)
            if artifact_type is None or is_media_type(artifact_type)
            else []
        )
        descriptors = []
        for manifest in found:
            descriptor: dict[str, object] = {
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": manifest.size,
            }
            if manifest.artifact_type:
                descriptor["artifactType"] = manifest.artifact_type
            if manifest.annotations:
                descriptor["annotations"] = manifest.annotations
            descriptors.append(descriptor)
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        ).encode()
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        return Response(body, 200, headers=headers, media_type=OCI_INDEX)

    # -- blobs ------------------------------------------------------------------------------

    async def get_blob(
        self, request: Request, name: str, *, target: Target, digest: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        blob = await self.content.blob(repository, digest)
        headers = {"Docker-Content-Digest": str(blob.digest), "Accept-Ranges": "bytes"}
        if request.method == "HEAD":
            headers["Content-Length"] = str(blob.size)
            return Response(None, 200, headers=headers, media_type="application/octet-stream")
        return await blob_response(request, self.storage, blob, redirect=self.redirect)

    async def delete_blob(
        self, request: Request, name: str, *, target: Target, digest: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        await self.content.delete_blob(repository, digest)
        return Response(None, 202)

    # -- uploads ----------------------------------------------------------------------------

    async def start_upload(self, request: Request, name: str, *, target: Target) -> Response:
        repository = await self._repository_for_push(request, name, target)
        params = request.query_params
        mount, source = params.get("mount"), params.get("from")
        if mount and source:
            mounted = await self._mount(request, repository, mount, source, target)
            if mounted:
                return Response(
                    None,
                    201,
                    headers={
                        "Location": f"/v2/{name}/blobs/{mount}",
                        "Docker-Content-Digest": mount,
                    },
                )
        digest = params.get("digest")
        if digest:
            committed = await self.uploads.monolithic(
                repository, digest, self._body(request), content_length(request)
            )
            return Response(
                None,
                201,
                headers={
                    "Location": f"/v2/{name}/blobs/{committed.digest}",
                    "Docker-Content-Digest": str(committed.digest),
                },
            )
        upload = await self.uploads.start(repository)
        return Response(None, 202, headers=_upload_headers(name, upload.id, 0))

    async def _repository_for_push(self, request: Request, name: str, target: Target) -> Repository:
        """The repository a push goes to. Creating a missing one (CREATE_ON_PUSH) needs
        `ecr:CreateRepository` besides the push's own action."""

        async def may_create() -> None:
            await self.gatekeeper.authorize(
                request, target.principal, Access("ecr:CreateRepository", target.registry_id, name)
            )

        return await self.content.repository_for_push(
            name, target.registry_id, before_create=may_create
        )

    async def _mount(
        self,
        request: Request,
        repository: Repository,
        digest: str,
        source_name: str,
        target: Target,
    ) -> bool:
        try:
            validate_repository_name(source_name)
            await self.gatekeeper.authorize(
                request,
                target.principal,
                Access(
                    ACTIONS["get_blob"], repository.registry_id, source_name, {"digest": digest}
                ),
            )
            source = await self.content.repository(source_name, repository.registry_id)
            return await self.content.mount_blob(repository, digest, source) is not None
        except (Forbidden, RegistryError):
            # The spec's answer to a mount that cannot be done is a plain upload session.
            return False

    @staticmethod
    async def _body(request: Request) -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            yield chunk

    async def upload_status(
        self, request: Request, name: str, *, target: Target, upload: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        found = await self.uploads.get(repository, upload)
        return Response(None, 204, headers=_upload_headers(name, found.id, found.offset))

    async def patch_upload(
        self, request: Request, name: str, *, target: Target, upload: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        start, end = content_range(request)
        updated = await self.uploads.append(
            repository,
            upload,
            self._body(request),
            start=start,
            end=end,
            content_length=content_length(request),
        )
        return Response(None, 202, headers=_upload_headers(name, updated.id, updated.offset))

    async def finish_upload(
        self, request: Request, name: str, *, target: Target, upload: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        length = content_length(request)
        start, end = content_range(request)
        has_body = length != 0 and (
            length is not None or "chunked" in request.headers.get("transfer-encoding", "")
        )
        committed = await self.uploads.finish(
            repository,
            upload,
            request.query_params.get("digest"),
            self._body(request) if has_body else None,
            start=start,
            end=end,
            content_length=length,
        )
        return Response(
            None,
            201,
            headers={
                "Location": f"/v2/{name}/blobs/{committed.digest}",
                "Docker-Content-Digest": str(committed.digest),
            },
        )

    async def cancel_upload(
        self, request: Request, name: str, *, target: Target, upload: str
    ) -> Response:
        repository = await self.content.repository(name, target.registry_id)
        await self.uploads.cancel(repository, upload)
        return Response(None, 204)
