"""Request validation against botocore's own service model: AWS JSON 1.1 (ECR), and the query
protocol's parameters once `cargohold.http.awsquery` has nested them.

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
import re
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape


class ValidationFailed(Exception):
    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        super().__init__(f"{count} validation {noun} detected: " + "; ".join(problems))
        self.message = str(self)


class SerializationFailed(Exception):
    """A body that is not the JSON object the operation takes (wrong type where a type is fixed)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@functools.cache
def service_model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


# The models write some patterns for Java's regex engine: Unicode property classes become their
# Python equivalents (letters and digits are `\w`, separators `\s`).
_UNICODE_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\d", r"\p{Z}": r"\s"}


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    """The model's pattern as a Python regex; None for one Python cannot read (not checked)."""
    for java, python in _UNICODE_CLASSES.items():
        pattern = pattern.replace(java, python)
    try:
        return re.compile(pattern)
    except re.error:
        return None


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
        self.problems: list[str] = []
        self.member_name = member_name

    def constraint(self, value: Any, path: str, rule: str) -> None:
        self.problems.append(
            f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: {rule}"
        )

    def walk(self, shape: Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            return self.structure(shape, value, path)
        if kind == "list":
            assert isinstance(shape, ListShape)
            if not isinstance(value, list):
                raise SerializationFailed(f"Expected list or null for {path}")
            self.length(shape, value, path, "Member must have length")
            return [
                self.walk(shape.member, v, f"{path}.{i + 1}.member") for i, v in enumerate(value)
            ]
        if kind == "map":
            assert isinstance(shape, MapShape)
            if not isinstance(value, dict):
                raise SerializationFailed(f"Expected map or null for {path}")
            self.length(shape, value, path, "Member must have length")
            return {
                self.walk(shape.key, k, f"{path}.key"): self.walk(shape.value, v, f"{path}.value")
                for k, v in value.items()
            }
        if kind == "string":
            if not isinstance(value, str):
                raise SerializationFailed(f"Expected string for {path}")
            self.length(shape, value, path, "Member must have length")
            enum = shape.metadata.get("enum")
            if enum and value not in enum:
                self.constraint(
                    value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"
                )
            pattern = shape.metadata.get("pattern")
            compiled = _pattern(pattern) if pattern else None
            if compiled is not None and not compiled.fullmatch(value):
                self.constraint(
                    value, path, f"Member must satisfy regular expression pattern: {pattern}"
                )
            return value
        if kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SerializationFailed(f"Expected number for {path}")
            low, high = shape.metadata.get("min"), shape.metadata.get("max")
            if low is not None and value < low:
                self.constraint(
                    value, path, f"Member must have value greater than or equal to {low}"
                )
            if high is not None and value > high:
                self.constraint(value, path, f"Member must have value less than or equal to {high}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise SerializationFailed(f"Expected boolean for {path}")
            return value
        if kind == "blob":
            if not isinstance(value, str):
                raise SerializationFailed(f"Expected base64 string for {path}")
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise SerializationFailed(f"Invalid base64 for {path}") from None
            self.length(shape, data, path, "Member must have length")
            return data
        if kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SerializationFailed(f"Expected epoch seconds for {path}")
            return float(value)
        if kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SerializationFailed(f"Expected number for {path}")
            return float(value)
        return value

    def length(self, shape: Shape, value: Any, path: str, rule: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        size = len(value)
        if low is not None and size < low:
            self.constraint(value, path, f"{rule} greater than or equal to {low}")
        if high is not None and size > high:
            self.constraint(value, path, f"{rule} less than or equal to {high}")

    def structure(self, shape: StructureShape, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise SerializationFailed(f"Expected object for {path or 'the request body'}")
        result: dict[str, Any] = {}
        for name in shape.required_members:
            if value.get(name) is None:
                shown = self.member_name(name)
                where = f"{path}.{shown}" if path else shown
                self.problems.append(
                    f"Value null at '{where}' failed to satisfy constraint: Member must not be null"
                )
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
        raise ValidationFailed(walker.problems)
    return params
