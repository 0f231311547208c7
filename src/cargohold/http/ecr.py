"""The Amazon ECR API front: AWS JSON 1.1 on `POST /`, dispatched on `X-Amz-Target`.

Each call is authenticated (SigV4), validated against botocore's ECR model, authorized as
`ecr:<Operation>` on the resource it names (with the request's condition keys: `aws:SourceIp`,
`aws:SecureTransport`, and the tags a call sets as `aws:RequestTag/…` and `aws:TagKeys`), and
handed to one operation handler. Handlers are
thin: they call the service layer and shape its answer for the wire. Timestamps go out as epoch
seconds; every answer carries `x-amzn-RequestId`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cargohold.auth.errors import AuthError
from cargohold.domain.errors import AccessDenied, RegistryError
from cargohold.domain.policy import request_tag_context
from cargohold.domain.principal import Principal
from cargohold.http.awsjson import (
    SerializationFailed,
    ValidationFailed,
    service_model,
    validate_input,
)
from cargohold.http.ecr_errors import CONTENT_TYPE, aws_error, from_registry_error
from cargohold.service.authz import Enforce, RequestRecord

log = logging.getLogger(__name__)

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
#: UploadLayerPart carries up to 20 MiB of base64 in JSON.
MAX_BODY = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EcrCall:
    """One validated ECR call, as handlers see it."""

    operation: str
    principal: Principal
    params: dict[str, Any]
    registry_id: str
    request_id: str
    source_ip: str | None
    region: str
    #: The request's condition keys, as authorization saw them.
    context: Mapping[str, Any] = field(default_factory=dict)

    def repository_arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.registry_id}:repository/{name}"


Handler = Callable[[EcrCall], Awaitable[dict[str, Any]]]


class EcrAuthenticator(Protocol):
    """Who signed this request; raises AuthError (with AWS's `__type`) when nobody valid did."""

    async def authenticate(self, request: Request, body: bytes) -> Principal: ...


#: What the front calls to authorize each resource of a call.
Authorize = Enforce


#: Request members CloudTrail leaves out of `requestParameters`: layer bytes.
_UNRECORDED = frozenset({"layerPartBlob"})
#: Longer strings are cut in the audit log (a manifest can be 4 MiB).
_RECORDED_TEXT = 10240


def request_context(operation: str, params: Mapping[str, Any], request: Request) -> dict[str, Any]:
    """The condition keys an ECR call brings: where it comes from, and the tags it sets."""
    context: dict[str, Any] = {
        "aws:SecureTransport": "true" if request.url.scheme == "https" else "false"
    }
    if request.client is not None:
        context["aws:SourceIp"] = request.client.host
    if operation in ("CreateRepository", "TagResource"):
        tags = {t.get("Key", ""): t.get("Value", "") for t in params.get("tags") or []}
        if tags or operation == "TagResource":
            context.update(request_tag_context(tags))
    elif operation == "UntagResource":
        context["aws:TagKeys"] = tuple(params.get("tagKeys") or [])
    return context


def recorded_parameters(value: Any) -> Any:
    """Request parameters as the audit log keeps them: JSON values, layer bytes left out."""
    if isinstance(value, Mapping):
        return {
            key: recorded_parameters(item) for key, item in value.items() if key not in _UNRECORDED
        }
    if isinstance(value, list | tuple):
        return [recorded_parameters(item) for item in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and len(value) > _RECORDED_TEXT:
        return value[:_RECORDED_TEXT] + "…"
    return value


class EcrFront:
    def __init__(
        self,
        authenticator: EcrAuthenticator,
        authorize: Authorize,
        handlers: Mapping[str, Handler],
        *,
        region: str,
    ) -> None:
        self._authenticator = authenticator
        self._authorize = authorize
        self._handlers = dict(handlers)
        self._region = region
        self._model = service_model("ecr")

    @property
    def operations(self) -> frozenset[str]:
        """The operations served; others answer UnsupportedOperationException."""
        return frozenset(self._handlers)

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            return await self._handle(request, request_id)
        except AuthError as exc:
            return aws_error(exc.aws_type, exc.message, exc.http_status, request_id=request_id)
        except ValidationFailed as exc:
            return aws_error("ValidationException", exc.message, request_id=request_id)
        except SerializationFailed as exc:
            return aws_error("SerializationException", exc.message, request_id=request_id)
        except RegistryError as exc:
            return from_registry_error(exc, request_id=request_id)
        except ClientDisconnect:
            return Response(status_code=400)

    async def _handle(self, request: Request, request_id: str) -> Response:
        if request.method != "POST":
            return aws_error(
                "UnknownOperationException", "only POST is supported", 404, request_id=request_id
            )
        body = await self._read_body(request)
        if body is None:
            return aws_error(
                "SerializationException", "request body is too large", 413, request_id=request_id
            )
        # Authentication comes first: an anonymous caller learns nothing about operations.
        principal = await self._authenticator.authenticate(request, body)
        target = request.headers.get("x-amz-target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        if operation not in self._model.operation_names:
            return aws_error(
                "UnknownOperationException",
                f"Unknown operation {target[:100]!r}",
                request_id=request_id,
            )
        try:
            document = json.loads(body) if body.strip() else {}
        except ValueError:
            raise SerializationFailed("the request body is not valid JSON") from None
        params = validate_input(self._model.operation_model(operation), document)
        registry_id = params.get("registryId") or principal.account_id
        call = EcrCall(
            operation=operation,
            principal=principal,
            params=params,
            registry_id=registry_id,
            request_id=request_id,
            source_ip=request.client.host if request.client else None,
            region=self._region,
            context=request_context(operation, params, request),
        )
        record = RequestRecord(
            event_source="ecr.amazonaws.com",
            parameters=recorded_parameters(params),
            request_id=request_id,
            user_agent=request.headers.get("user-agent"),
            region=self._region,
        )
        for resource in self._resources(call):
            await self._authorize(
                principal, f"ecr:{operation}", resource, call.context, record=record
            )
        handler = self._handlers.get(operation)
        if handler is None:
            return aws_error(
                "UnsupportedOperationException",
                f"The operation {operation} is not supported by this registry.",
                request_id=request_id,
            )
        result = await handler(call)
        return Response(
            json.dumps(result, separators=(",", ":")).encode(),
            200,
            headers={"x-amzn-RequestId": request_id},
            media_type=CONTENT_TYPE,
        )

    @staticmethod
    def _resources(call: EcrCall) -> list[str]:
        """The resources an operation acts on, as IAM policies name them; each must be allowed.
        Operations that name several repositories act on each of them."""
        if call.operation in ("TagResource", "UntagResource", "ListTagsForResource"):
            return [str(call.params.get("resourceArn", "*"))]
        name = call.params.get("repositoryName")
        if name:
            return [call.repository_arn(name)]
        names = call.params.get("repositoryNames")
        if names and call.operation in (
            "DescribeRepositories",
            "BatchGetRepositoryScanningConfiguration",
        ):
            return [call.repository_arn(n) for n in dict.fromkeys(names)]
        if call.operation == "DescribeRepositories":
            return [call.repository_arn("*")]
        # Account-level operations (GetAuthorizationToken, DescribeRegistry, settings,
        # templates, the registry policy) name no resource; IAM policies grant them on "*".
        return ["*"]

    @staticmethod
    async def _read_body(request: Request) -> bytes | None:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BODY:
                return None
        return bytes(data)


def denied(principal: Principal, action: str, resource: str, reason: str) -> AccessDenied:
    return AccessDenied(
        f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} "
        f"because {reason}"
    )
