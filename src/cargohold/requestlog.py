"""`log_format = "json"`: every log record as one JSON object per line, and one record per
request.

A request's record (logger `cargohold.request`) holds the time, the level, the request id (the
`x-amzn-RequestId` the client received: the AWS fronts' own, and for `/v2/` and the rest the
one this layer adds to the response), the principal's ARN, the action and the repository of the
last authorization decision made for it, the method, the path without its query string, the
status and the duration in milliseconds.

What is never written, in either format: header values (`Authorization` among them), query
strings (presigned URLs carry signatures there), request and response bodies. The records
name principals by ARN, never by key or token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from cargohold.domain.eventids import new_id
from cargohold.service.audit import REQUEST_DECISIONS
from cargohold.service.authz import AuthenticationFailure, AuthorizationRecord

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

REQUEST_LOGGER = "cargohold.request"
_REQUEST_ID_SCOPE_KEY = "cargohold.request_id"  # the AWS fronts' (http/awsrequest.py)
_REQUEST_ID_HEADER = b"x-amzn-requestid"
_FIELDS = ("request_id", "principal", "action", "repository", "method", "path", "status")

log = logging.getLogger(REQUEST_LOGGER)


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, the request fields when the record has them, and the
    exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*_FIELDS, "duration_ms"):
            value = record.__dict__.get(name)
            if value is not None:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, separators=(",", ":"), default=str)


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # each start's migration check


def _repository(resource_arn: str) -> str | None:
    _, found, name = resource_arn.partition(":repository/")
    return name if found and name != "*" else None


class RequestLog:
    """ASGI middleware writing one record per HTTP request (see the module's docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        decisions: list[AuthorizationRecord | AuthenticationFailure] = []
        token = REQUEST_DECISIONS.set(decisions)
        fields: dict[str, Any] = {"status": None, "request_id": None}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields["status"] = message["status"]
                headers = list(message.get("headers", ()))
                for name, value in headers:
                    if name.lower() == _REQUEST_ID_HEADER:
                        fields["request_id"] = value.decode("latin-1")
                        break
                else:
                    request_id = scope.get(_REQUEST_ID_SCOPE_KEY) or new_id()
                    fields["request_id"] = request_id
                    headers.append((b"x-amzn-RequestId", request_id.encode()))
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            REQUEST_DECISIONS.reset(token)
            authorized = [d for d in decisions if isinstance(d, AuthorizationRecord)]
            last = authorized[-1] if authorized else None
            log.info(
                "request",
                extra={
                    "request_id": fields["request_id"],
                    "principal": last.principal.arn if last else None,
                    "action": last.action if last else None,
                    "repository": _repository(last.resource_arn) if last else None,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": fields["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )


def app_from_environment() -> Any:
    """The application of one worker process, with its request log and metrics as configured."""
    from cargohold import metrics
    from cargohold.app import app_from_environment as application

    app = application()
    configure_logging(app.config.log_level, app.config.log_format)
    return wrap(metrics.wrap(app, app.config), app.config.log_format)


def wrap(app: Any, log_format: str) -> Any:
    return RequestLog(app) if log_format == "json" else app


__all__ = ["JsonFormatter", "RequestLog", "configure_logging"]
