"""Serving blob files: Starlette's FileResponse (Range, HEAD, ETag) with a cheaper whole-file GET.

A whole blob is read 1 MiB at a time straight from the page cache on the event loop
(`preadv` with `RWF_NOWAIT`, which never waits for the disk: it reads what is cached or
nothing), and only a slice that is not cached goes to a worker thread. A pull of a blob that was
pushed or pulled recently therefore costs no thread hop per MiB; a cold blob costs what it did.
Ranges and HEAD stay with FileResponse.
"""

from __future__ import annotations

import os

import anyio.to_thread
from starlette.responses import FileResponse
from starlette.types import Send

SLICE = 1024 * 1024
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def read_cached(fd: int, size: int, offset: int) -> bytearray | None:
    """Up to `size` bytes at `offset` if the page cache holds them now, else None."""
    if _NOWAIT is None:
        return None
    buffer = bytearray(size)
    try:
        got = os.preadv(fd, [buffer], offset, _NOWAIT)
    except (BlockingIOError, OSError):
        # EAGAIN: not cached; EOPNOTSUPP and friends: a filesystem without RWF_NOWAIT.
        return None
    if got <= 0:
        return None
    if got < size:
        del buffer[got:]
    return buffer


class BlobFileResponse(FileResponse):
    chunk_size = SLICE

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        if send_header_only or send_pathsend:
            await super()._handle_simple(send, send_header_only, send_pathsend)
            return
        fd = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            start = {"status": self.status_code, "headers": self.raw_headers}
            await send({"type": "http.response.start", **start})
            offset = 0
            while True:
                want = min(SLICE, size - offset)
                chunk: bytes | bytearray | None = read_cached(fd, want, offset) if want else b""
                if chunk is None:
                    chunk = await anyio.to_thread.run_sync(os.pread, fd, want, offset)
                offset += len(chunk)
                more = bool(chunk) and offset < size
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    break
        finally:
            os.close(fd)
