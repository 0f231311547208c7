"""Serving blob files: Starlette's FileResponse (Range, HEAD, ETag) with a cheaper whole-file GET.

A whole blob is read 1 MiB at a time straight from the page cache on the event loop
(`preadv` with `RWF_NOWAIT`, which never waits for the disk: it reads what is cached or
nothing), and only a slice that is not cached goes to a worker thread. A pull of a blob that was
pushed or pulled recently therefore costs no thread hop per MiB; a cold blob costs what it did.
Ranges and HEAD stay with FileResponse, with ranges read as RFC 9110 says: a `Range` that is
not syntactically a `bytes=` range set is ignored (the whole blob, 200); one whose ranges are
all unsatisfiable (`bytes=500-0`, a start past the end) is 416 with `Content-Range: bytes */SIZE`.
"""

from __future__ import annotations

import os
import re

import anyio.to_thread
from starlette.responses import FileResponse, RangeNotSatisfiable
from starlette.types import Send

SLICE = 1024 * 1024
_NOWAIT = getattr(os, "RWF_NOWAIT", None)
#: One range-spec: `first-[last]` or `-suffix`, ASCII digits only.
_RANGE_SPEC = re.compile(r"[ \t]*(?:([0-9]{1,19})-([0-9]{0,19})|-([0-9]{1,19}))[ \t]*")


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


def satisfiable_ranges(header: str, size: int, max_ranges: int) -> list[tuple[int, int]]:
    """The `[start, end)` byte ranges `header` asks for; [] when the header is to be ignored
    (malformed, another unit, too many ranges). Raises RangeNotSatisfiable when none of its
    ranges can be served from `size` bytes."""
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return []
    parts = specs.split(",")
    if len(parts) > max_ranges:
        return []
    matches = [_RANGE_SPEC.fullmatch(part) for part in parts]
    ranges: list[tuple[int, int]] = []
    for match in matches:
        if match is None:
            return []
        first, last, suffix = match.groups()
        if suffix is not None:
            if int(suffix) > 0 and size > 0:
                ranges.append((max(size - int(suffix), 0), size))
        elif int(first) < size and (not last or int(last) >= int(first)):
            ranges.append((int(first), min(int(last) + 1, size) if last else size))
    if not ranges:
        raise RangeNotSatisfiable(size)
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class BlobFileResponse(FileResponse):
    chunk_size = SLICE

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        return satisfiable_ranges(http_range, file_size, cls.max_ranges)

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
