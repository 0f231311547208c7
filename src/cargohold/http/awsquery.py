"""The AWS Query protocol (STS, IAM): form-encoded `Action=…&Version=…` requests, XML answers.

Request parameters arrive flattened (`Tags.member.1.Key=team`, `Attributes.entry.1.key=…`);
`nest` reads them into the nested shape of the operation's input, converting numbers,
booleans and timestamps as the model types them, and `awsjson.validate_input` then checks them
against botocore's model, as for the JSON services. Answers are written by `render_result`,
driven by the operation's output shape (no answer is written by hand): the `<OpResponse>`
element, the `<OpResult>` wrapper, list members as `<member>`, maps as `<entry>`, timestamps
in ISO 8601, IAM policy documents URL-encoded (`policyDocumentType`, which botocore decodes),
and `ResponseMetadata/RequestId`. Errors are `<ErrorResponse>` documents.

`QueryFront` is the front both services share: authenticate (SigV4, with the service's
credential scope), parse and validate, authorize the operation's action on its resource, call
the handler, render. The service fronts (`http/sts.py`, `http/iam.py`) bring their handlers,
their resource ARNs and their error table.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote
from xml.etree import ElementTree

from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cargohold.auth.errors import (
    AuthError,
    ExpiredToken,
    InvalidSignature,
    UnrecognizedClient,
)
from cargohold.domain.errors import AccessDenied, RegistryError
from cargohold.domain.principal import Principal
from cargohold.http.aws_auth import claimed_service
from cargohold.http.awsjson import (
    SerializationFailed,
    ValidationFailed,
    lower_camel,
    service_model,
    validate_input,
)
from cargohold.service.authz import Enforce, RequestRecord

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/xml"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
#: Far above any real IAM or STS request (policy documents are the largest part).
MAX_BODY = 256 * 1024
_POLICY_DOCUMENT_SHAPE = "policyDocumentType"


class QueryError(Exception):
    """An error answered as-is: its `code`, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


# -- parsing -------------------------------------------------------------------------------


def form_params(body: bytes, query_string: str) -> dict[str, str]:
    """The request's parameters: the query string's and the form body's (the body wins)."""
    params: dict[str, str] = {}
    for source in (query_string, body.decode("utf-8", "replace")):
        for name, value in parse_qsl(source, keep_blank_values=True):
            params[name] = value
    return params


def is_query_request(request: Request) -> bool:
    """Whether a request to `/` speaks the query protocol (a form POST, or `?Action=`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST":
        return content_type == FORM_CONTENT_TYPE and "x-amz-target" not in request.headers
    return "Action=" in request.scope.get("query_string", b"").decode("latin-1")


def nest(shape: StructureShape, flat: Mapping[str, str]) -> dict[str, Any]:
    """The flattened parameters read into `shape`'s nested form, scalars typed."""
    return _Nester(flat).structure(shape, "")


class _Nester:
    def __init__(self, flat: Mapping[str, str]) -> None:
        self.flat = flat
        self.prefixes = {name.rsplit(".", 1)[0] for name in flat}

    def present(self, key: str) -> bool:
        return key in self.flat or any(
            prefix == key or prefix.startswith(key + ".") for prefix in self.prefixes
        )

    def structure(self, shape: StructureShape, prefix: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            key = f"{prefix}.{key}" if prefix else key
            if self.present(key):
                found[name] = self.value(member, key)
        return found

    def value(self, shape: Shape, key: str) -> Any:
        if isinstance(shape, StructureShape):
            return self.structure(shape, key)
        if isinstance(shape, ListShape):
            return self.list(shape, key)
        if isinstance(shape, MapShape):
            return self.map(shape, key)
        return self.scalar(shape, key, self.flat.get(key, ""))

    def list(self, shape: ListShape, key: str) -> list[Any]:
        if self.flat.get(key) == "":  # `Name=` is an empty list
            return []
        member = shape.member.serialization.get("name", "member")
        base = key if shape.serialization.get("flattened") else f"{key}.{member}"
        items = []
        index = 1
        while self.present(f"{base}.{index}"):
            items.append(self.value(shape.member, f"{base}.{index}"))
            index += 1
        return items

    def map(self, shape: MapShape, key: str) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        base = key if shape.serialization.get("flattened") else f"{key}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        index = 1
        while self.present(f"{base}.{index}"):
            entry = f"{base}.{index}"
            entry_key = self.flat.get(f"{entry}.{key_name}", "")
            entries[entry_key] = self.value(shape.value, f"{entry}.{value_name}")
            index += 1
        return entries

    def scalar(self, shape: Shape, key: str, text: str) -> Any:
        kind = shape.type_name
        try:
            if kind in ("integer", "long"):
                return int(text)
            if kind in ("float", "double"):
                return float(text)
            if kind == "boolean":
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                return text.lower() == "true"
            if kind == "timestamp":
                return _parse_timestamp(text)
            if kind == "blob":
                base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            raise ValidationFailed(
                [
                    f"Value '{text[:200]}' at '{lower_camel(key)}' failed to satisfy constraint: "
                    f"Member must be a valid {kind}"
                ]
            ) from None
        return text


def _parse_timestamp(text: str) -> float:
    if text.replace(".", "", 1).isdigit():
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def validate(operation: OperationModel, flat: Mapping[str, str]) -> dict[str, Any]:
    """The operation's parameters, nested, typed and checked against the model."""
    shape = operation.input_shape
    nested = {} if shape is None else nest(shape, flat)
    return validate_input(operation, nested or None, member_name=lower_camel)


# -- rendering -----------------------------------------------------------------------------


def render_result(
    model: ServiceModel, operation: OperationModel, result: Mapping[str, Any], request_id: str
) -> bytes:
    """`<OpResponse><OpResult>…</OpResult><ResponseMetadata>…` for the operation's answer."""
    root = ElementTree.Element(
        f"{operation.name}Response", xmlns=model.metadata.get("xmlNamespace", "")
    )
    output = operation.output_shape
    if output is not None:
        wrapper = output.serialization.get("resultWrapper", f"{operation.name}Result")
        _structure(ElementTree.SubElement(root, wrapper), output, result)
    metadata = ElementTree.SubElement(root, "ResponseMetadata")
    ElementTree.SubElement(metadata, "RequestId").text = request_id
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)
    return document


def _structure(
    parent: ElementTree.Element, shape: StructureShape, value: Mapping[str, Any]
) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is None:
            continue
        tag = member.serialization.get("name", name)
        if isinstance(member, ListShape) and member.serialization.get("flattened"):
            for element in item:
                _value(ElementTree.SubElement(parent, tag), member.member, element)
            continue
        _value(ElementTree.SubElement(parent, tag), member, item)


def _value(element: ElementTree.Element, shape: Shape, value: Any) -> None:
    if isinstance(shape, StructureShape):
        _structure(element, shape, value)
    elif isinstance(shape, ListShape):
        tag = shape.member.serialization.get("name", "member")
        for item in value:
            _value(ElementTree.SubElement(element, tag), shape.member, item)
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            entry = ElementTree.SubElement(element, "entry")
            _value(ElementTree.SubElement(entry, "key"), shape.key, key)
            _value(ElementTree.SubElement(entry, "value"), shape.value, item)
    else:
        element.text = _scalar(shape, value)


def _scalar(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "blob":
        return base64.b64encode(value).decode("ascii")
    if shape.name == _POLICY_DOCUMENT_SHAPE:
        # IAM sends policy documents URL-encoded; botocore decodes them (json_decode_policies).
        return quote(str(value), safe="")
    return str(value)


def error_document(namespace: str, code: str, message: str, request_id: str) -> bytes:
    root = ElementTree.Element("ErrorResponse", xmlns=namespace)
    error = ElementTree.SubElement(root, "Error")
    ElementTree.SubElement(error, "Type").text = "Sender"
    ElementTree.SubElement(error, "Code").text = code
    ElementTree.SubElement(error, "Message").text = message
    ElementTree.SubElement(root, "RequestId").text = request_id
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)
    return document


# -- errors --------------------------------------------------------------------------------

#: Query-protocol names and statuses for the authentication errors (`auth/errors.py`).
_AUTH_CODES: dict[type[AuthError], tuple[str, int]] = {
    UnrecognizedClient: ("InvalidClientTokenId", 403),
    InvalidSignature: ("SignatureDoesNotMatch", 403),
    ExpiredToken: ("ExpiredToken", 400),
}


def auth_error(exc: AuthError) -> QueryError:
    for kind, (code, status) in _AUTH_CODES.items():
        if isinstance(exc, kind):
            return QueryError(code, exc.message, status)
    return QueryError(exc.aws_type.removesuffix("Exception"), exc.message, exc.http_status)


def modeled_statuses(model: ServiceModel) -> dict[str, int]:
    """Each modeled error code and the HTTP status the model gives it."""
    statuses: dict[str, int] = {}
    for name in model.shape_names:
        error = model.shape_for(name).metadata.get("error")
        if error and "code" in error:
            statuses[error["code"]] = int(error.get("httpStatusCode", 400))
    return statuses


#: Codes the models do not list, with AWS's statuses.
COMMON_STATUSES: dict[str, int] = {
    "ValidationError": 400,
    "AccessDenied": 403,
    "MalformedInput": 400,
    "InvalidAction": 400,
    "MissingAction": 400,
    "UnsupportedOperation": 400,
}


# -- the front -----------------------------------------------------------------------------


_ASSUME_ROLE_KEYS = {
    "sts:RoleSessionName": "RoleSessionName",
    "sts:ExternalId": "ExternalId",
    "sts:SourceIdentity": "SourceIdentity",
}


@dataclass(frozen=True, slots=True)
class QueryCall:
    """One validated call, as handlers see it."""

    action: str
    principal: Principal
    params: dict[str, Any]
    request_id: str
    source_ip: str | None
    secure_transport: bool

    @property
    def account(self) -> str:
        return self.principal.account_id

    @property
    def context(self) -> dict[str, str]:
        """The request's own condition keys, and those STS defines from AssumeRole's parameters
        (a trust policy may ask for `sts:ExternalId`, `sts:RoleSessionName`,
        `sts:SourceIdentity`)."""
        context = {"aws:SecureTransport": "true" if self.secure_transport else "false"}
        if self.source_ip is not None:
            context["aws:SourceIp"] = self.source_ip
        if self.action == "AssumeRole":
            for key, member in _ASSUME_ROLE_KEYS.items():
                value = self.params.get(member)
                if isinstance(value, str):
                    context[key] = value
        return context


QueryHandler = Callable[[QueryCall], Awaitable[dict[str, Any]]]
#: The resource an action acts on, as IAM policies name it; None for actions no policy governs
#: (GetCallerIdentity, GetSessionToken).
ResourceOf = Callable[[QueryCall], Awaitable[str | None]]
#: The composition root's `Authorizer.authorize`, raising AccessDenied for a denial.
Authorize = Enforce
ErrorCode = Callable[[RegistryError], str | None]


class QueryAuthenticator(Protocol):
    async def authenticate(self, request: Request, body: bytes) -> Principal: ...


class QueryFront:
    """One query-protocol service (`sts` or `iam`) on `POST /`."""

    def __init__(
        self,
        service: str,
        authenticator: QueryAuthenticator,
        authorize: Authorize,
        handlers: Mapping[str, QueryHandler],
        *,
        resource_of: ResourceOf,
        error_code: ErrorCode,
        check_caller: Callable[[QueryCall], None] | None = None,
    ) -> None:
        self.service = service
        self._authenticator = authenticator
        self._authorize = authorize
        self._handlers = dict(handlers)
        self._resource_of = resource_of
        self._error_code = error_code
        self._check_caller = check_caller
        self._model = service_model(service)
        self._namespace = self._model.metadata.get("xmlNamespace", "")
        self._statuses = {**COMMON_STATUSES, **modeled_statuses(self._model)}

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self._model.operation_names)

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            return await self._handle(request, request_id)
        except QueryError as exc:
            return self._error(exc.code, exc.message, exc.status, request_id)
        except AuthError as exc:
            error = auth_error(exc)
            return self._error(error.code, error.message, error.status, request_id)
        except ValidationFailed as exc:
            return self._error("ValidationError", exc.message, 400, request_id)
        except SerializationFailed as exc:
            return self._error("MalformedInput", exc.message, 400, request_id)
        except AccessDenied as exc:
            return self._error("AccessDenied", exc.message, 403, request_id)
        except RegistryError as exc:
            code = self._error_code(exc)
            if code is None:
                log.exception("unexpected error in %s", self.service)
                return self._error("ServiceFailure", "internal error", 500, request_id)
            return self._error(code, exc.message, self._statuses.get(code, 400), request_id)
        except ClientDisconnect:
            return Response(status_code=400)

    async def _handle(self, request: Request, request_id: str) -> Response:
        body = await _read_body(request)
        # Authentication comes first: an anonymous caller learns nothing about operations.
        principal = await self._authenticator.authenticate(request, body)
        params = form_params(body, request.scope.get("query_string", b"").decode("latin-1"))
        action = params.pop("Action", "")
        params.pop("Version", None)
        for name in [name for name in params if name.startswith("X-Amz-")]:
            params.pop(name)
        if not action:
            raise QueryError("MissingAction", "Missing Action")
        if action not in self._model.operation_names:
            raise QueryError("InvalidAction", f"Could not find operation {action[:100]}")
        operation = self._model.operation_model(action)
        call = QueryCall(
            action=action,
            principal=principal,
            params=validate(operation, params),
            request_id=request_id,
            source_ip=request.client.host if request.client else None,
            secure_transport=request.url.scheme == "https",
        )
        if self._check_caller is not None:
            self._check_caller(call)
        resource = await self._resource_of(call)
        if resource is not None:
            await self._authorize(
                principal,
                f"{self.service}:{action}",
                resource,
                call.context,
                record=RequestRecord(
                    event_source=f"{self.service}.amazonaws.com",
                    parameters=call.params,
                    request_id=request_id,
                    user_agent=request.headers.get("user-agent"),
                ),
            )
        handler = self._handlers.get(action)
        if handler is None:
            raise QueryError(
                "UnsupportedOperation", f"The operation {action} is not supported by this registry."
            )
        result = await handler(call)
        return Response(
            render_result(self._model, operation, result, request_id),
            200,
            headers={"x-amzn-RequestId": request_id},
            media_type=CONTENT_TYPE,
        )

    def _error(self, code: str, message: str, status: int, request_id: str) -> Response:
        return Response(
            error_document(self._namespace, code, message, request_id),
            status,
            headers={"x-amzn-RequestId": request_id},
            media_type=CONTENT_TYPE,
        )


async def _read_body(request: Request) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise QueryError("RequestEntityTooLarge", "Request body is too large", 413)
    return bytes(data)


class QueryDispatch:
    """The query-protocol services on `/`, told apart by the service their SigV4 credential
    scope names (`…/us-east-1/iam/aws4_request`), or for a request that names none (unsigned),
    by its Action; failing both, STS answers (as AWS does to an unsigned request)."""

    def __init__(self, *fronts: QueryFront, default: str = "sts") -> None:
        self._fronts = {front.service: front for front in fronts}
        self._default = self._fronts[default]

    async def __call__(self, request: Request) -> Response:
        front = self._fronts.get(claimed_service(request) or "")
        if front is None:
            front = await self._by_action(request)
        return await front(request)

    async def _by_action(self, request: Request) -> QueryFront:
        length = request.headers.get("content-length", "")
        if request.method == "POST" and (not length.isdigit() or int(length) > MAX_BODY):
            return self._default
        # Starlette keeps the body read here for the front's own reading of it.
        body = await request.body() if request.method == "POST" else b""
        query = request.scope.get("query_string", b"").decode("latin-1")
        action = form_params(body, query).get("Action", "")
        for front in self._fronts.values():
            if action in front.actions:
                return front
        return self._default
