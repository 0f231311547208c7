"""The AWS Query protocol (STS, IAM): form-encoded `Action=…&Version=…` requests, XML answers.

Request parameters arrive flattened (`Tags.member.1.Key=team`, `Attributes.entry.1.key=…`);
`nest` reads them into the nested shape of the operation's input, converting numbers,
booleans and timestamps as the model types them, and `awsjson.validate_input` then checks them
against botocore's model, as for the JSON services. Answers are written by `render_result`,
driven by the operation's output shape (no answer is written by hand): the `<OpResponse>`
element, the `<OpResult>` wrapper, list members as `<member>`, maps as `<entry>`, timestamps
in ISO 8601, IAM policy documents URL-encoded (`policyDocumentType`, which botocore decodes),
and `ResponseMetadata/RequestId`. Errors are `<ErrorResponse>` documents.

`QueryProtocol` is how `cargohold.http.awsfront` speaks it; the services (`http/sts.py`,
`http/iam.py`) bring their handlers and resource ARNs, and share `query_errors`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.etree import ElementTree

from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from starlette.requests import Request
from starlette.responses import Response

from cargohold.auth.errors import (
    AuthError,
    ExpiredToken,
    InvalidSignature,
    UnrecognizedClient,
)
from cargohold.domain.errors import AccessDenied, RegistryError
from cargohold.domain.identity import IdentityError
from cargohold.domain.policy import PolicyError
from cargohold.http.awsjson import (
    SerializationFailed,
    ValidationFailed,
    lower_camel,
    validate_input,
)
from cargohold.http.awsservice import AwsError, AwsService, Violation

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/xml"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
#: Far above any real IAM or STS request (policy documents are the largest part).
MAX_BODY = 256 * 1024
_POLICY_DOCUMENT_SHAPE = "policyDocumentType"


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
            rule = f"Member must be a valid {kind}"
            violation = Violation(lower_camel(key), rule, text[:200], "type")
            raise ValidationFailed([violation]) from None
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


def error_document(
    namespace: str, code: str, message: str, request_id: str, *, server_fault: bool = False
) -> bytes:
    """The Query protocol's error body; its `Type` says whose fault it is, as AWS's do."""
    root = ElementTree.Element("ErrorResponse", xmlns=namespace)
    error = ElementTree.SubElement(root, "Error")
    ElementTree.SubElement(error, "Type").text = "Receiver" if server_fault else "Sender"
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


def auth_error(exc: AuthError) -> AwsError:
    for kind, (code, status) in _AUTH_CODES.items():
        if isinstance(exc, kind):
            return AwsError(code, exc.message, status)
    return AwsError(exc.aws_type.removesuffix("Exception"), exc.message, exc.http_status)


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


# -- the protocol --------------------------------------------------------------------------


def query_errors(exc: RegistryError, model: ServiceModel) -> AwsError:
    """The error table of STS and IAM: a denial, and the errors that carry IAM's own code."""
    if isinstance(exc, AccessDenied):
        return AwsError("AccessDenied", exc.message, 403)
    if isinstance(exc, PolicyError | IdentityError):
        return AwsError(exc.code, exc.message, _statuses(model).get(exc.code, 400))
    log.exception("unexpected error in %s", model.signing_name)
    return AwsError("ServiceFailure", "internal error", 500)


@functools.cache
def _statuses(model: ServiceModel) -> dict[str, int]:
    return {**COMMON_STATUSES, **modeled_statuses(model)}


def _query_string(request: Request) -> str:
    query: str = request.scope.get("query_string", b"").decode("latin-1")
    return query


class QueryProtocol:
    """The query protocol, as `cargohold.http.awsfront.WireProtocol` describes a protocol."""

    name = "query"
    max_body = MAX_BODY

    def refusal(self, request: Request) -> AwsError | None:
        return None

    def too_large(self) -> AwsError:
        return AwsError("RequestEntityTooLarge", "Request body is too large", 413)

    def addressed(self, service: AwsService, request: Request, body: bytes) -> bool:
        action = form_params(body, _query_string(request)).get("Action", "")
        return action in service.model.operation_names

    def decode(
        self, service: AwsService, request: Request, body: bytes
    ) -> tuple[str, dict[str, Any]]:
        params = form_params(body, _query_string(request))
        action = params.pop("Action", "")
        params.pop("Version", None)
        for name in [name for name in params if name.startswith("X-Amz-")]:
            params.pop(name)
        if not action:
            raise AwsError("MissingAction", "Missing Action")
        model = service.model
        if action not in model.operation_names:
            raise AwsError("InvalidAction", f"Could not find operation {action[:100]}")
        return action, validate(model.operation_model(action), params)

    def unsupported(self, operation: str) -> AwsError:
        return AwsError(
            "UnsupportedOperation", f"The operation {operation} is not supported by this registry."
        )

    def translate(self, exc: Exception) -> AwsError:
        """Authentication and validation failures, as query services answer them."""
        if isinstance(exc, AuthError):
            return auth_error(exc)
        if isinstance(exc, ValidationFailed):
            return AwsError("ValidationError", exc.message, 400)
        if isinstance(exc, SerializationFailed):
            return AwsError("MalformedInput", exc.message, 400)
        raise TypeError(f"not a protocol error: {exc!r}")

    def errors(self, exc: RegistryError, model: ServiceModel) -> AwsError:
        return query_errors(exc, model)

    def answer(
        self, service: AwsService, operation: str, result: Mapping[str, Any], request_id: str
    ) -> Response:
        model = service.model
        return Response(
            render_result(model, model.operation_model(operation), result, request_id),
            200,
            headers={"x-amzn-RequestId": request_id},
            media_type=CONTENT_TYPE,
        )

    def error(self, service: AwsService, error: AwsError, request_id: str) -> Response:
        namespace = service.model.metadata.get("xmlNamespace", "")
        return Response(
            error_document(
                namespace, error.code, error.message, request_id, server_fault=error.status >= 500
            ),
            error.status,
            headers={"x-amzn-RequestId": request_id},
            media_type=CONTENT_TYPE,
        )
