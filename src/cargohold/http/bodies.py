"""Request bodies that stall are cut off, whichever front reads them.

Every body is read through ASGI `receive` (`/v2/` uploads and manifest PUTs, the AWS APIs), so
one wrapper of `receive` holds every reader to two limits:

- the idle timeout: no byte for `idle_timeout` seconds (`body_idle_timeout_seconds`, 60 by
  default) ends the request;
- the minimum rate: once `grace` seconds have been spent waiting for the body
  (`body_rate_grace_seconds`, 10), it must have come at `min_rate` bytes a second on average
  (`body_min_bytes_per_second`, 1024; 0 turns the check off).

Only time spent waiting for the client counts: time the server spends writing or hashing what
arrived is never held against the client. Each wait is bounded by whichever limit comes first, so
a client that sends a few bytes and stalls is cut off after `grace` seconds, and a fast upload
that stops after `grace` seconds after `idle_timeout`.

A request that is cut off raises `BodyTimeout` (a `ClientDisconnect`, so readers give up as when
the client goes away: a partial upload append is discarded) and is answered 408 with
`Connection: close`, in the front's own error shape, whatever the reader answered.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, NoReturn

import anyio
from starlette.requests import ClientDisconnect, Request

from cargohold.http.awsquery import error_document, is_query_request
from cargohold.http.awsrequest import request_id_of

log = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TIMED_OUT = (
    "Your socket connection to the server was not read from or written to within the timeout "
    "period."
)


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How long a request body may stall, and how slowly it may come."""

    idle_timeout: float = 60.0
    #: Bytes a second a body must average once `grace` seconds were spent waiting; 0: no minimum.
    min_rate: float = 1024.0
    grace: float = 10.0


class BodyTimeout(ClientDisconnect):
    """The request body stalled or came too slowly."""


class GuardedBody:
    """One request's `receive` held to `BodyLimits`, and its `send`, which answers 408 in
    place of whatever the application answers once the body was cut off."""

    def __init__(
        self,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
        limits: BodyLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send
        self._limits = limits
        self._clock = clock
        self._complete = False
        self._received = 0
        self._waited = 0.0
        self._started = False
        self._replaced = False
        #: Why the body was cut off; None while it was not.
        self.cut_off: str | None = None

    async def receive(self) -> Message:
        if self._complete:
            return await self._receive()
        if self.cut_off is not None:
            raise BodyTimeout()
        began = self._clock()
        with anyio.move_on_after(self._allowed_wait()) as waiting:
            message = await self._receive()
        self._waited += self._clock() - began
        if waiting.cancelled_caught:
            self._cut_off(self._reason())
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            self._complete = not message.get("more_body", False)
        else:
            self._complete = True
        if not self._complete and self._too_slow():
            # Bytes already waiting end a wait at once, so a trickle is also judged here.
            self._cut_off(self._reason())
        return message

    def _cut_off(self, reason: str) -> NoReturn:
        self.cut_off = reason
        log.info("cut off %s %s: %s", self._scope.get("method"), self._scope.get("path"), reason)
        raise BodyTimeout()

    def _too_slow(self) -> bool:
        limits = self._limits
        return (
            limits.min_rate > 0
            and self._waited > limits.grace
            and self._received < limits.min_rate * self._waited
        )

    def _allowed_wait(self) -> float:
        """How long the next wait may last before one of the limits is broken."""
        limits = self._limits
        if limits.min_rate <= 0:
            return limits.idle_timeout
        # The average stays above the minimum while the time waited stays below this.
        budget = max(limits.grace, self._received / limits.min_rate) - self._waited
        return max(0.0, min(limits.idle_timeout, budget))

    def _reason(self) -> str:
        limits = self._limits
        if limits.min_rate > 0 and self._waited > 0 and self._waited >= limits.grace:
            rate = self._received / self._waited
            if rate < limits.min_rate:
                return (
                    f"request body came at {rate:.0f} bytes/s, "
                    f"below the minimum of {limits.min_rate:.0f}"
                )
        return f"no request body byte for {limits.idle_timeout:g} s"

    async def send(self, message: Message) -> None:
        if self.cut_off is None or (self._started and not self._replaced):
            self._started = self._started or message["type"] == "http.response.start"
            await self._send(message)
            return
        if not self._replaced:
            self._replaced = True
            await self._answer_timeout(self.cut_off)
        # The application's own answer is dropped: the 408 was sent in its place.

    async def _answer_timeout(self, reason: str) -> None:
        status, headers, body = self._timeout_answer(reason)
        headers = [
            *headers,
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    def _timeout_answer(self, reason: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path: str = self._scope.get("path", "")
        if path == "/":
            request = Request(self._scope)
            request_id = [(b"x-amzn-requestid", request_id_of(request).encode())]
            if is_query_request(request):
                document = error_document("", "RequestTimeout", TIMED_OUT, request_id_of(request))
                return 408, [(b"content-type", b"text/xml"), *request_id], document
            body = json.dumps({"__type": "RequestTimeoutException", "message": TIMED_OUT})
            return (
                408,
                [(b"content-type", b"application/x-amz-json-1.1"), *request_id],
                (body.encode()),
            )
        code = "BLOB_UPLOAD_INVALID" if "/blobs/uploads" in path else "MANIFEST_INVALID"
        entry = {"code": code, "message": TIMED_OUT, "detail": {"reason": reason}}
        document = json.dumps({"errors": [entry]}).encode()
        return 408, [(b"content-type", b"application/json")], document
