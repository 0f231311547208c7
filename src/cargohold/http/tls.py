"""HTTPS on the server's port, with a plain answer for plain HTTP and certificates reloaded on
SIGHUP.

uvicorn is given no TLS settings of its own: each connection's first bytes are looked at (without
reading them) before anything else happens. A TLS handshake record (first byte 0x16) goes through
`loop.start_tls` with the current `ssl.SSLContext`, and the HTTP protocol then runs over the
encrypted transport. Anything else is a client speaking plain HTTP to an HTTPS port: it gets a
400 saying so, in plain HTTP, and the connection is closed. A client that never sends a byte is
closed after the head timeout; a handshake that does not finish in that time is dropped too.

Certificates: `TlsFiles.context()` builds one `SSLContext` per process and keeps it; `reload()`
builds a new one from the files and, when that works, makes it the one new connections use.
Connections already open keep the context they were made with, so a reload drops nothing in flight.
A certificate or key that cannot be loaded leaves the previous context in place.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any, cast

log = logging.getLogger(__name__)

_TLS_HANDSHAKE = 0x16

_PLAIN_HTTP_ANSWER = (
    b"This port speaks HTTPS only: the request was sent as plain HTTP. Use https:// in the URL.\n"
)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM certificate (optionally followed by its chain) and private key the server uses."""

    cert: str
    key: str

    def load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def context(self) -> ssl.SSLContext:
        current = _CONTEXTS.get(self)
        if current is None:
            current = _CONTEXTS[self] = self.load()
        return current

    def reload(self) -> bool:
        """Load the files again for new connections; False (and the old context kept) when they
        cannot be loaded."""
        try:
            context = self.load()
        except (OSError, ssl.SSLError) as exc:
            log.error(
                "TLS certificate %s not reloaded, keeping the previous one: %s", self.cert, exc
            )
            return False
        _CONTEXTS[self] = context
        log.info("TLS certificate reloaded from %s", self.cert)
        return True


#: The context of each certificate and key in this process.
_CONTEXTS: dict[TlsFiles, ssl.SSLContext] = {}


class TlsSniffingProtocol(asyncio.Protocol):
    """Stands in front of uvicorn's HTTP protocol (`inner`, built with uvicorn's arguments)
    until the connection is known to speak TLS; then hands it the encrypted transport."""

    def __init__(self, *args: Any, inner: Any, tls: TlsFiles, timeout: float, **kwargs: Any):
        self._inner: asyncio.Protocol = inner(*args, **kwargs)
        self._tls = tls
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._peeker: socket.socket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._early: list[bytes] = []
        self._handed_over = False

    # -- before the first byte ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.pause_reading()
        # The event loop watches the transport's descriptor; a duplicate is watched here instead.
        peeker = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
        self._peeker = peeker
        self._loop.add_reader(peeker.fileno(), self._peek)
        self._timer = self._loop.call_later(self._timeout, self._give_up)

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._peeker is not None:
            self._loop.remove_reader(self._peeker.fileno())
            self._peeker.close()
            self._peeker = None

    def _give_up(self) -> None:
        self._timer = None
        self._stop_waiting()
        if self._transport is not None:
            self._transport.close()

    def _peek(self) -> None:
        if self._peeker is None:
            return
        try:
            first = self._peeker.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            first = b""
        self._stop_waiting()
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not first:
            transport.close()
            return
        if first[0] == _TLS_HANDSHAKE:
            self._loop.create_task(self._start_tls(transport))
        else:
            transport.set_protocol(_PlainHttpRefusal(transport))
            transport.resume_reading()

    async def _start_tls(self, transport: asyncio.Transport) -> None:
        # start_tls resumes reading itself, once the TLS layer is in place.
        try:
            secure = await self._loop.start_tls(
                transport,
                self,
                self._tls.context(),
                server_side=True,
                ssl_handshake_timeout=self._timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            transport.close()
            return
        if secure is None or secure.is_closing():
            transport.close()
            return
        self._handed_over = True
        secure.set_protocol(self._inner)
        self._inner.connection_made(secure)
        for data in self._early:
            self._inner.data_received(data)
        self._early.clear()

    # -- while the handshake runs, and after it ----------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._handed_over:
            self._inner.data_received(data)
        else:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        if self._handed_over:
            return self._inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._handed_over:
            self._inner.connection_lost(exc)


class _PlainHttpRefusal(asyncio.Protocol):
    """Answers a plain HTTP request on the HTTPS port with a 400 that says what went wrong, once
    the request's first bytes are read (closing with them unread could reset the connection
    before the answer arrives)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._transport.is_closing():
            return
        self._transport.write(
            b"HTTP/1.1 400 Bad Request\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(_PLAIN_HTTP_ANSWER)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + _PLAIN_HTTP_ANSWER
        )
        self._transport.close()


def tls_protocol(inner: Any, tls: TlsFiles, timeout: float) -> Any:
    """The protocol class for uvicorn's `http` option: `inner` (itself such a class) behind TLS
    (picklable, so worker processes get it too)."""
    return functools.partial(TlsSniffingProtocol, inner=inner, tls=tls, timeout=timeout)
