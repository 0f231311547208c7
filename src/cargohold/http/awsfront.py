"""The AWS APIs on `POST /`: one pipeline for every service (`AwsService`).

Each call is authenticated (SigV4, scoped to the service), decoded through the service's
protocol (JSON 1.1 by `X-Amz-Target`, `cargohold.http.awsjson`; Query by its `Action` and
`Version` fields, `cargohold.http.awsquery`) and validated against botocore's model, authorized
as `<service>:<Operation>` on each resource it acts on, handed to the service's handler, and
answered in the protocol's shape with `x-amzn-RequestId`. Every decision reaches the audit log
with the one `RequestRecord` the call carries (`cargohold.http.awsrequest.request_record`).

Before authentication a request gets only size checks; its body is parsed once its signature
holds, within the operation's limits (`awsjson.parse_body`), and validated in time linear in its
size (`cargohold.http.awspatterns`), so no caller can hold the event loop.

Which service a request is for: its protocol first (a form POST without `X-Amz-Target`, or a
request with `?Action=`, speaks Query; anything else JSON), then among that protocol's services
the one its SigV4 credential scope names (`…/us-east-1/iam/aws4_request`), else the one whose
operation it names, else the protocol's first service (as AWS, STS answers an unsigned Query
request).

A call that fails unexpectedly is answered as the protocol answers an internal failure
(`ServerException` in JSON, `ServiceFailure` in Query), never in another front's shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

from botocore.model import ServiceModel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cargohold.auth.errors import AuthError, MissingAuthenticationToken
from cargohold.domain.errors import RegistryError
from cargohold.domain.principal import Principal
from cargohold.http.aws_auth import claimed_service
from cargohold.http.awsjson import JsonProtocol, SerializationFailed, ValidationFailed
from cargohold.http.awsquery import QueryProtocol, is_query_request
from cargohold.http.awsrequest import condition_keys, request_id_of, request_record
from cargohold.http.awsservice import AwsCall, AwsError, AwsService
from cargohold.service.authz import Enforce, RequestRecord

log = logging.getLogger(__name__)


class WireProtocol(Protocol):
    """How one AWS protocol reads a call and writes its answer."""

    #: botocore's name of the protocol (`ServiceModel.protocol`).
    name: str
    #: The largest request body read.
    max_body: int

    def refusal(self, request: Request) -> AwsError | None:
        """An error for a request the protocol refuses before reading it."""
        ...

    def too_large(self) -> AwsError: ...

    def addressed(self, service: AwsService, request: Request, body: bytes) -> bool:
        """Whether the request names one of the service's operations."""
        ...

    def decode(
        self, service: AwsService, request: Request, body: bytes
    ) -> tuple[str, dict[str, Any]]:
        """The operation and its parameters, validated against the model. Raises AwsError,
        ValidationFailed, SerializationFailed."""
        ...

    def unsupported(self, operation: str) -> AwsError: ...

    def translate(self, exc: Exception) -> AwsError:
        """An AuthError, ValidationFailed or SerializationFailed, as the protocol answers it."""
        ...

    def errors(self, exc: RegistryError, model: ServiceModel) -> AwsError:
        """The error table of a service that brings none of its own."""
        ...

    def answer(
        self, service: AwsService, operation: str, result: Mapping[str, Any], request_id: str
    ) -> Response: ...

    def error(self, service: AwsService, error: AwsError, request_id: str) -> Response: ...


class Authenticator(Protocol):
    """Who signed this request for `service`; raises AuthError when nobody valid did."""

    async def authenticate(self, request: Request, body: bytes, *, service: str) -> Principal: ...


PROTOCOLS: dict[str, WireProtocol] = {"json": JsonProtocol(), "query": QueryProtocol()}


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request's body; None once it grows past `limit`."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


class FailedAuthentication(Protocol):
    """Where rejected credentials are reported (`Authorizer.authentication_failed`)."""

    async def __call__(
        self,
        error_code: str,
        error_message: str,
        *,
        event_name: str,
        access_key_id: str | None,
        record: RequestRecord,
    ) -> None: ...


_CREDENTIAL_KEY = re.compile(r"Credential=([A-Za-z0-9]{16,128})/")


def _presented_key(request: Request) -> str | None:
    """The access key id a SigV4 request names (header or presigned query), if any."""
    text = request.headers.get("authorization", "") or unquote(
        request.scope.get("query_string", b"").decode("latin-1")
    ).replace("X-Amz-Credential=", "Credential=")
    match = _CREDENTIAL_KEY.search(text)
    return match.group(1) if match else None


def _operation_named(request: Request, body: bytes) -> str:
    """The operation a request names, before it is decoded: the JSON protocol's
    `X-Amz-Target`, the query protocol's `Action`."""
    target = request.headers.get("x-amz-target")
    if target:
        return target.rpartition(".")[2][:128]
    try:
        actions = parse_qs(body.decode("ascii"), max_num_fields=1000).get("Action")
    except (UnicodeDecodeError, ValueError):
        actions = None
    return actions[0][:128] if actions else "Authenticate"


class AwsFront:
    def __init__(
        self,
        services: Iterable[AwsService],
        authenticator: Authenticator,
        authorize: Enforce,
        *,
        region: str,
        authentication_failed: FailedAuthentication | None = None,
    ) -> None:
        self._services = list(services)
        if not self._services:
            raise ValueError("an AWS front serves at least one service")
        self._by_name = {service.name: service for service in self._services}
        self._authenticator = authenticator
        self._authorize = authorize
        self._region = region
        self._authentication_failed = authentication_failed

    def operations(self, name: str) -> frozenset[str]:
        """The operations a service serves; the model's others answer as unsupported."""
        return self._by_name[name].operations

    async def __call__(self, request: Request) -> Response:
        request_id = request_id_of(request)
        candidates = self._candidates(request)
        protocol = PROTOCOLS[candidates[0].protocol]
        claimed = claimed_service(request)
        service = next((s for s in candidates if s.name == claimed), None)
        try:
            refusal = protocol.refusal(request)
            if refusal is not None:
                raise refusal
            body = await read_body(request, protocol.max_body)
            if body is None:
                raise protocol.too_large()
        except AwsError as error:
            return protocol.error(service or candidates[0], error, request_id)
        except ClientDisconnect:
            return Response(status_code=400)
        if service is None:
            addressed = (s for s in candidates if protocol.addressed(s, request, body))
            service = next(addressed, candidates[0])
        return await self._answer(protocol, service, request, body, request_id)

    def _candidates(self, request: Request) -> list[AwsService]:
        """The services of the protocol the request speaks (failing any, of the first's)."""
        wanted = "query" if is_query_request(request) else "json"
        found = [s for s in self._services if s.protocol == wanted]
        if found:
            return found
        return [s for s in self._services if s.protocol == self._services[0].protocol]

    async def _answer(
        self,
        protocol: WireProtocol,
        service: AwsService,
        request: Request,
        body: bytes,
        request_id: str,
    ) -> Response:
        try:
            return await self._serve(protocol, service, request, body, request_id)
        except AwsError as exc:
            error = exc
        except ValidationFailed as exc:
            if service.invalid is not None:
                error = service.invalid(exc, service.model)
            else:
                error = protocol.translate(exc)
        except (AuthError, SerializationFailed) as exc:
            error = protocol.translate(exc)
        except RegistryError as exc:
            error = (service.errors or protocol.errors)(exc, service.model)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception:
            log.exception("unexpected error in %s", service.name)
            return self.internal_error(request)
        return protocol.error(service, error, request_id)

    async def _report_failure(
        self, error: AuthError, service: AwsService, request: Request, body: bytes
    ) -> None:
        """Audit credentials that were presented and rejected (an unsigned request presented
        none)."""
        if self._authentication_failed is None or isinstance(error, MissingAuthenticationToken):
            return
        await self._authentication_failed(
            error.aws_type,
            error.message,
            event_name=_operation_named(request, body),
            access_key_id=_presented_key(request),
            record=request_record(
                request, event_source=service.event_source, region=self._region, parameters={}
            ),
        )

    def internal_error(self, request: Request) -> Response:
        """The answer to a call that failed unexpectedly, in the protocol it speaks."""
        candidates = self._candidates(request)
        claimed = claimed_service(request)
        service = next((s for s in candidates if s.name == claimed), candidates[0])
        protocol = PROTOCOLS[service.protocol]
        # The protocol's own table: a service's table may read an unknown error as the caller's.
        error = protocol.errors(RegistryError("internal error"), service.model)
        return protocol.error(service, error, request_id_of(request))

    async def _serve(
        self,
        protocol: WireProtocol,
        service: AwsService,
        request: Request,
        body: bytes,
        request_id: str,
    ) -> Response:
        # Authentication comes first: an anonymous caller learns nothing about operations.
        try:
            principal = await self._authenticator.authenticate(request, body, service=service.name)
        except AuthError as exc:
            await self._report_failure(exc, service, request, body)
            raise
        operation, params = protocol.decode(service, request, body)
        call = AwsCall(
            service=service.name,
            operation=operation,
            principal=principal,
            params=params,
            request_id=request_id,
            region=self._region,
            record=request_record(
                request,
                event_source=service.event_source,
                region=self._region,
                parameters=service.recorded(params),
            ),
            context={**condition_keys(request), **service.context(operation, params)},
        )
        if service.check_caller is not None:
            service.check_caller(call)
        for resource in await service.resources(call):
            action = f"{service.name}:{operation}"
            await self._authorize(principal, action, resource, call.context, record=call.record)
        handler = service.handlers.get(operation)
        if handler is None:
            raise protocol.unsupported(operation)
        return protocol.answer(service, operation, await handler(call), request_id)
