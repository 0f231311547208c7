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

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, NoReturn

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


def _has_body(scope: MutableMapping[str, Any]) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def guarded(
    scope: MutableMapping[str, Any], receive: Receive, send: Send, limits: BodyLimits
) -> tuple[Receive, Send]:
    """`receive` and `send` of a request, held to `limits` when it has a body (as is, when not:
    nothing to guard, and nothing added to the GET and HEAD requests that matter most)."""
    if not _has_body(scope):
        return receive, send
    body = GuardedBody(scope, receive, send, limits)
    return body.receive, body.send


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
        # A request without Content-Length or Transfer-Encoding has no body to guard.
        self._complete = not _has_body(scope)
        self._received = 0
        self._waited = 0.0
        self._started = False
        self._replaced = False
        #: Why the body was cut off; None while it was not.
        self.cut_off: str | None = None
        # One timer per request, not one per chunk: it is armed when a wait begins and none is
        # armed, and when it fires during a wait that broke a limit it cancels that wait.
        self._timer: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None
        self._waiter: asyncio.Task[Any] | None = None
        self._expired = False

    async def receive(self) -> Message:
        if self._complete:
            return await self._receive()
        if self.cut_off is not None:
            raise BodyTimeout()
        began = self._waiting_since = self._clock()
        self._waiter = asyncio.current_task()
        if self._timer is None:
            self._arm(self._allowed_wait())
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self._expired or self._waiter is None:
                raise
            self._waiter.uncancel()
            self._expired = False
            self._waited += self._clock() - began
            self._cut_off(self._reason())
        finally:
            self._waiting_since = None
        self._waited += self._clock() - began
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            self._complete = not message.get("more_body", False)
        else:
            self._complete = True
        if self._complete:
            self._disarm()
        elif self._too_slow():
            # Bytes already waiting end a wait at once, so a trickle is also judged here.
            self._cut_off(self._reason())
        return message

    def _arm(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(delay, 0.0), self._check)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        """The timer: cancel the wait under way if it has lasted longer than allowed, else
        look again when it would have."""
        self._timer = None
        since = self._waiting_since
        if since is None or self._waiter is None or self._complete:
            return  # not waiting: the next wait arms the timer again
        remaining = self._allowed_wait() - (self._clock() - since)
        if remaining > 0.001:
            self._arm(remaining)
            return
        self._expired = True
        self._waiter.cancel()

    def _cut_off(self, reason: str) -> NoReturn:
        self._disarm()
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
