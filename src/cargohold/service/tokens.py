"""ECR's opaque `nextToken`s: urlsafe base64 of a small JSON document naming the operation, the
repository and the keyset to continue after, meaningless in another call."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cargohold.domain import jsondoc
from cargohold.domain.errors import InvalidParameter


def invalid_token() -> InvalidParameter:
    return InvalidParameter(
        "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"
    )


def encode_token(operation: str, repository_id: int, key: list[Any]) -> str:
    document = {"v": 1, "op": operation, "repo": repository_id, "key": key}
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, operation: str, repository_id: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = jsondoc.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid_token() from None
    if (
        not isinstance(document, dict)
        or document.get("v") != 1
        or document.get("op") != operation
        or document.get("repo") != repository_id
        or not isinstance(document.get("key"), list)
    ):
        raise invalid_token()
    key: list[Any] = document["key"]
    return key
