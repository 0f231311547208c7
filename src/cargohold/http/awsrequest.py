"""What every front tells authorization and the audit log about a request, made in one place:
its id, its condition keys (`aws:SourceIp`, `aws:SecureTransport`) and its `RequestRecord`.
The AWS API pipeline (`cargohold.http.awsfront`) and the `/v2/` gatekeeper both use these, so
a decision is recorded the same way whichever door the request came in by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from cargohold.domain.eventids import new_id
from cargohold.service.authz import RequestRecord

_REQUEST_ID = "cargohold.request_id"


def request_id_of(request: Request) -> str:
    """The request's id (`x-amzn-RequestId`), made on first use and kept with the request."""
    request_id = request.scope.get(_REQUEST_ID)
    if not isinstance(request_id, str):
        request_id = request.scope[_REQUEST_ID] = new_id()
    return request_id


def source_ip(request: Request) -> str | None:
    # The ASGI scope's (host, port) pair as it is: `Request.client` builds an Address at every
    # read, and every /v2/ request asks twice (condition keys and the audit record).
    client = request.scope.get("client")
    return str(client[0]) if client else None


def condition_keys(request: Request) -> dict[str, str]:
    """The global condition keys the request itself brings."""
    secure = request.scope.get("scheme") == "https"
    keys = {"aws:SecureTransport": "true" if secure else "false"}
    address = source_ip(request)
    if address is not None:
        keys["aws:SourceIp"] = address
    return keys


def request_record(
    request: Request, *, event_source: str, region: str, parameters: Mapping[str, Any]
) -> RequestRecord:
    """The request as the audit log keeps it beside each decision made for it."""
    return RequestRecord(
        event_source=event_source,
        parameters=parameters,
        request_id=request_id_of(request),
        user_agent=request.headers.get("user-agent"),
        region=region,
        source_ip=source_ip(request),
    )
