"""The AWS JSON 1.1 protocol (ECR): the operation named by `X-Amz-Target`, a JSON body in and
out, errors as `{"__type": …, "message": …}`; and request validation against botocore's own
service model, for JSON services and for the query protocol's parameters once
`cargohold.http.awsquery` has nested them.

No shape is written by hand: the walker below reads botocore's model (types, required members,
min/max, patterns, enums) and reports violations in the words AWS services use, e.g.
"1 validation error detected: Value 'X' at 'repositoryName' failed to satisfy constraint:
Member must satisfy regular expression pattern: …". Blobs arrive base64-encoded and are decoded;
timestamps arrive as epoch seconds.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from starlette.requests import Request
from starlette.responses import Response

from cargohold.auth.errors import AuthError
from cargohold.domain import jsondoc
from cargohold.domain.errors import AccessDenied, RegistryError
from cargohold.http.awspatterns import matcher
from cargohold.http.awsservice import AwsError, AwsService, ValidationFailed, Violation

__all__ = ["JsonProtocol", "SerializationFailed", "ValidationFailed", "validate_input"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
#: UploadLayerPart carries up to 20 MiB of base64 in JSON.
MAX_BODY = 32 * 1024 * 1024
#: The largest body of an operation whose input carries no large payload (a blob, or a string
#: the model lets reach a megabyte, like PutImage's manifest).
SMALL_BODY = 1024 * 1024
#: The separators (`,` `:` `[` `{`) a larger body may hold. Parsing time grows with the values
#: a document holds, not with the length of its strings: this bounds it (tens of milliseconds)
#: before anything is parsed, whoever the caller is (a manifest of 4 MiB holds far fewer).
MAX_SEPARATORS = 1024 * 1024


class SerializationFailed(Exception):
    """A body that is not the JSON object the operation takes (wrong type where a type is fixed)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def _as_written(name: str) -> str:
    return name


def lower_camel(name: str) -> str:
    """How query-protocol services name members in messages: `userName` for `UserName`."""
    return name[:1].lower() + name[1:]


class _Walker:
    def __init__(self, member_name: Callable[[str], str] = _as_written) -> None:
        self.problems: list[Violation] = []
        self.member_name = member_name
        self.kinds: dict[str, Callable[[Any, Any, str], Any]] = {
            "structure": self.structure,
            "list": self.items,
            "map": self.entries,
            "string": self.string,
            "integer": self.integer,
            "long": self.integer,
            "boolean": self.boolean,
            "blob": self.blob,
            "timestamp": self.number,
            "float": self.number,
            "double": self.number,
        }

    def constraint(self, value: Any, path: str, rule: str, kind: str, pattern: str = "") -> None:
        self.problems.append(Violation(path, rule, _show(value), kind, pattern))

    def walk(self, shape: Shape, value: Any, path: str) -> Any:
        kind = self.kinds.get(shape.type_name)
        return value if kind is None else kind(shape, value, path)

    def items(self, shape: ListShape, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise SerializationFailed(f"Expected list or null for {path}")
        self.length(shape, value, path, "size")
        return [self.walk(shape.member, v, f"{path}.{i + 1}.member") for i, v in enumerate(value)]

    def entries(self, shape: MapShape, value: Any, path: str) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise SerializationFailed(f"Expected map or null for {path}")
        self.length(shape, value, path, "size")
        return {
            self.walk(shape.key, k, f"{path}.key"): self.walk(shape.value, v, f"{path}.value")
            for k, v in value.items()
        }

    def string(self, shape: Shape, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise SerializationFailed(f"Expected string for {path}")
        self.length(shape, value, path, "length")
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            rule = f"Member must satisfy enum value set: [{', '.join(enum)}]"
            self.constraint(value, path, rule, "enum")
        pattern = shape.metadata.get("pattern")
        if pattern and not matcher(pattern)(value):
            rule = f"Member must satisfy regular expression pattern: {pattern}"
            self.constraint(value, path, rule, "pattern", pattern)
        return value

    def integer(self, shape: Shape, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SerializationFailed(f"Expected number for {path}")
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            rule = f"Member must have value greater than or equal to {low}"
            self.constraint(value, path, rule, "range")
        if high is not None and value > high:
            rule = f"Member must have value less than or equal to {high}"
            self.constraint(value, path, rule, "range")
        return value

    def boolean(self, shape: Shape, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise SerializationFailed(f"Expected boolean for {path}")
        return value

    def blob(self, shape: Shape, value: Any, path: str) -> bytes:
        if not isinstance(value, str):
            raise SerializationFailed(f"Expected base64 string for {path}")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise SerializationFailed(f"Invalid base64 for {path}") from None
        self.length(shape, data, path, "length")
        return data

    def number(self, shape: Shape, value: Any, path: str) -> float:
        """Floats and doubles; timestamps, which arrive as epoch seconds."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            expected = "epoch seconds" if shape.type_name == "timestamp" else "number"
            raise SerializationFailed(f"Expected {expected} for {path}")
        return float(value)

    def length(self, shape: Shape, value: Any, path: str, kind: str) -> None:
        """`kind`: `length` of a string or blob, `size` of a list or map."""
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        size = len(value)
        if low is not None and size < low:
            rule = f"Member must have length greater than or equal to {low}"
            self.constraint(value, path, rule, kind)
        if high is not None and size > high:
            rule = f"Member must have length less than or equal to {high}"
            self.constraint(value, path, rule, kind)

    def structure(self, shape: StructureShape, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise SerializationFailed(f"Expected object for {path or 'the request body'}")
        result: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                shown = self.member_name(name)
                where = f"{path}.{shown}" if path else shown
                self.problems.append(Violation(where, "Member must not be null", None, "null"))
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                shown = self.member_name(name)
                where = f"{path}.{shown}" if path else shown
                result[name] = self.walk(member, value[name], where)
        return result


def validate_input(
    operation: OperationModel, body: Any, *, member_name: Callable[[str], str] = _as_written
) -> dict[str, Any]:
    """The request's parameters, type-checked and constraint-checked against the model.

    `member_name` spells member names in messages (JSON services as the model does; query
    services in lower camel case, see `lower_camel`)."""
    shape = operation.input_shape
    if shape is None:
        if body not in ({}, None):
            raise SerializationFailed("this operation takes no parameters")
        return {}
    walker = _Walker(member_name)
    params = walker.structure(shape, {} if body is None else body, "")
    if walker.problems:
        raise ValidationFailed(walker.problems, operation.name)
    return params


# -- the protocol --------------------------------------------------------------------------


@functools.cache
def body_limit(operation: OperationModel) -> int:
    """The largest body an operation takes: MAX_BODY for one whose input carries a large
    payload, SMALL_BODY for the others."""
    shape = operation.input_shape
    members = shape.members.values() if isinstance(shape, StructureShape) else ()
    for member in members:
        if member.type_name == "blob" or member.metadata.get("max", 0) >= SMALL_BODY:
            return MAX_BODY
    return SMALL_BODY


def parse_body(operation: OperationModel, body: bytes) -> Any:
    """The JSON document of a request body, once its size allows parsing it at once. Raises
    AwsError (413) for a body too large for the operation, SerializationFailed otherwise."""
    if len(body) > body_limit(operation):
        raise AwsError("SerializationException", "request body is too large", 413)
    if len(body) > SMALL_BODY:
        separators = sum(body.count(char) for char in (b",", b":", b"[", b"{"))
        if separators > MAX_SEPARATORS:
            raise SerializationFailed("the request body holds too many values")
    try:
        return jsondoc.loads(body) if body.strip() else {}
    except ValueError:
        raise SerializationFailed("the request body is not valid JSON") from None


def error_response(error: AwsError, request_id: str) -> Response:
    body = json.dumps({"__type": error.code, "message": error.message, **error.fields}).encode()
    return Response(
        body, error.status, headers={"x-amzn-RequestId": request_id}, media_type=CONTENT_TYPE
    )


def target_prefix(model: ServiceModel) -> str:
    """`AmazonEC2ContainerRegistry_V20150921.`: what `X-Amz-Target` starts with."""
    return f"{model.metadata.get('targetPrefix', '')}."


class JsonProtocol:
    """AWS JSON 1.1, as `cargohold.http.awsfront.WireProtocol` describes a protocol."""

    name = "json"
    max_body = MAX_BODY

    def refusal(self, request: Request) -> AwsError | None:
        if request.method != "POST":
            return AwsError("UnknownOperationException", "only POST is supported", 404)
        return None

    def too_large(self) -> AwsError:
        return AwsError("SerializationException", "request body is too large", 413)

    def addressed(self, service: AwsService, request: Request, body: bytes) -> bool:
        return request.headers.get("x-amz-target", "").startswith(target_prefix(service.model))

    def decode(
        self, service: AwsService, request: Request, body: bytes
    ) -> tuple[str, dict[str, Any]]:
        model = service.model
        target = request.headers.get("x-amz-target", "")
        prefix = target_prefix(model)
        operation = target.removeprefix(prefix) if target.startswith(prefix) else ""
        if operation not in model.operation_names:
            raise AwsError("UnknownOperationException", f"Unknown operation {target[:100]!r}")
        operation_model = model.operation_model(operation)
        return operation, validate_input(operation_model, parse_body(operation_model, body))

    def unsupported(self, operation: str) -> AwsError:
        return AwsError(
            "UnsupportedOperationException",
            f"The operation {operation} is not supported by this registry.",
        )

    def translate(self, exc: Exception) -> AwsError:
        """Authentication and validation failures, as JSON services answer them."""
        if isinstance(exc, AuthError):
            return AwsError(exc.aws_type, exc.message, exc.http_status)
        if isinstance(exc, ValidationFailed):
            return AwsError("ValidationException", exc.message)
        if isinstance(exc, SerializationFailed):
            return AwsError("SerializationException", exc.message)
        raise TypeError(f"not a protocol error: {exc!r}")

    def errors(self, exc: RegistryError, model: ServiceModel) -> AwsError:
        """The error table of a JSON service that brings none of its own."""
        if isinstance(exc, AccessDenied):
            return AwsError("AccessDeniedException", exc.message)
        log.error("unexpected error in %s: %r", model.signing_name, exc)
        return AwsError("ServerException", "internal error", 500)

    def answer(
        self, service: AwsService, operation: str, result: Mapping[str, Any], request_id: str
    ) -> Response:
        return Response(
            json.dumps(result, separators=(",", ":")).encode(),
            200,
            headers={"x-amzn-RequestId": request_id},
            media_type=CONTENT_TYPE,
        )

    def error(self, service: AwsService, error: AwsError, request_id: str) -> Response:
        return error_response(error, request_id)
