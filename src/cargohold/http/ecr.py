"""The Amazon ECR API front: AWS JSON 1.1 on `POST /`, dispatched on `X-Amz-Target`.

Each call is authenticated (SigV4), validated against botocore's ECR model, authorized as
`ecr:<Operation>` on the resource it names, and handed to one operation handler. Handlers are
thin: they call the service layer and shape its answer for the wire. Timestamps go out as epoch
seconds; every answer carries `x-amzn-RequestId`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cargohold.auth.errors import AuthError
from cargohold.domain.errors import AccessDenied, RegistryError
from cargohold.domain.principal import Principal
from cargohold.http.awsjson import (
    SerializationFailed,
    ValidationFailed,
    service_model,
    validate_input,
)
from cargohold.http.ecr_errors import CONTENT_TYPE, aws_error, from_registry_error

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

    def repository_arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.registry_id}:repository/{name}"


Handler = Callable[[EcrCall], Awaitable[dict[str, Any]]]


class EcrAuthenticator(Protocol):
    """Who signed this request; raises AuthError (with AWS's `__type`) when nobody valid did."""

    async def authenticate(self, request: Request, body: bytes) -> Principal: ...


Authorize = Callable[[Principal, str, str, Mapping[str, Any]], Awaitable[None]]


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
        )
        await self._authorize(
            principal,
            f"ecr:{operation}",
            self._resource_arn(call),
            {"aws:SourceIp": call.source_ip, "aws:SecureTransport": request.url.scheme == "https"},
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
    def _resource_arn(call: EcrCall) -> str:
        """The resource an operation acts on, as IAM policies name it."""
        if call.operation in ("TagResource", "UntagResource", "ListTagsForResource"):
            return str(call.params.get("resourceArn", "*"))
        name = call.params.get("repositoryName")
        if name:
            return call.repository_arn(name)
        if call.operation == "DescribeRepositories":
            return call.repository_arn("*")
        # Account-level operations (GetAuthorizationToken, DescribeRegistry, settings,
        # templates) name no resource; IAM policies grant them on "*".
        return "*"

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
