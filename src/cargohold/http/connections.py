"""The HTTP/1.1 connections uvicorn serves, with the request head bounded in size and in time.

uvicorn's httptools protocol keeps a request line and header fields in memory however long they
grow, and waits for them however slowly they come: one connection sending an endless header
holds as much memory as it sends, and one that sends nothing at all is kept for ever. Here:

- a request head (request line and header fields) larger than `MAX_REQUEST_HEAD` bytes is
  answered 431 and the connection closed;
- a head that has not arrived `head_timeout` seconds after the connection opened, or after its
  own first byte, is answered 408 (or, when not a byte of it came, the connection is simply
  closed); between requests, uvicorn's keep-alive timeout closes an idle connection.

A TLS handshake arriving on this plain-HTTP port (a client told `https://`) is logged with what
to do about it, and the connection closed, instead of the parser's bare "Invalid HTTP request
received".

Request bodies are `cargohold.http.bodies`' concern, once the application reads them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Far above any real request head (an ECR token or a SigV4 session token is a few KiB).
MAX_REQUEST_HEAD = 64 * 1024

log = logging.getLogger(__name__)

#: A TLS record carrying a handshake (content type 22), protocol version 3.x: a ClientHello.
_TLS_HANDSHAKE = (0x16, 0x03)

TLS_ON_PLAIN_PORT = (
    "a TLS handshake from %s arrived on this plain-HTTP port: the client uses https:// but "
    "cargohold serves http:// here. Use http:// (podman, skopeo, buildah: --tls-verify=false; "
    "docker: plain HTTP is used for 127.0.0.0/8, other hosts go in insecure-registries; the "
    "aws CLI and boto3: an http:// endpoint URL), or put a TLS-terminating proxy in front and "
    "set public_url to its https:// URL"
)

_STATUS = {408: b"408 Request Timeout", 431: b"431 Request Header Fields Too Large"}


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads too large or too slow.

    A head's clock starts with the connection, and then with the first byte of each request. One
    timer per connection, re-armed when it fires, compares it with `head_timeout`: a request pays
    for a clock reading and three attribute writes, not for a timer of its own. Between requests
    an idle connection is uvicorn's keep-alive timeout's to close."""

    def __init__(self, *args: Any, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = 0.0
        self._in_head = True
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = self.loop.time()
        self._head_timer = self.loop.call_at(
            self._head_started + self._head_timeout, self._head_check
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_bytes == 0 and self.cycle is None and tuple(data[:2]) == _TLS_HANDSHAKE:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.warning(TLS_ON_PLAIN_PORT, client)
            self.transport.close()
            return
        HttpToolsProtocol.data_received(self, data)
        # A chunk that completed the head is not counted: the rest of it is body.
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD:
                self._refuse(431, "request head too large")

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        self._in_head = True
        self._head_bytes = 0
        self._head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        self._in_head = False
        HttpToolsProtocol.on_headers_complete(self)

    def _head_check(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        deadline = self._head_started + self._head_timeout
        if not self._in_head or now < deadline:
            self._head_timer = self.loop.call_at(
                deadline if self._in_head else now + self._head_timeout, self._head_check
            )
            return
        if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # opened, and not a byte sent: nothing to answer
            return
        self._refuse(408, "request head not received in time")

    def _refuse(self, status: int, message: str) -> None:
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 " + _STATUS[status] + b"\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


def bounded_head_protocol(head_timeout: float) -> Any:
    """The protocol class uvicorn's `http` option takes, with its head timeout (picklable, so
    worker processes get it too)."""
    return functools.partial(BoundedHeadProtocol, head_timeout=head_timeout)
