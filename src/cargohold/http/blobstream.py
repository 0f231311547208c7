"""A blob GET from whichever driver holds it: the file on a local disk (`blobfiles`), a 307 to a
presigned URL of the object store, or the store's bytes streamed through this node with `Range`
served as RFC 9110 reads it (one range: 206; several: ignored, the whole blob; none
satisfiable: 416). HEAD never comes here: the node answers it from the database.

Streams are the driver's own bounded chunks, so a node's memory never grows with a blob.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import RangeNotSatisfiable, Response, StreamingResponse

from cargohold.http.blobfiles import BlobFileResponse, satisfiable_ranges
from cargohold.ports import StorageDriver
from cargohold.service.content import BlobLocation

#: How long a blob GET's redirect to the store stays valid at least: enough to start the
#: download, which the store then serves to the end. The S3 driver signs it for twice that and
#: answers the same URL while this much of it remains.
REDIRECT_EXPIRES_IN = 300
_OCTETS = "application/octet-stream"


async def blob_response(
    request: Request, storage: StorageDriver, blob: BlobLocation, *, redirect: bool
) -> Response:
    headers = {"Docker-Content-Digest": str(blob.digest), "Accept-Ranges": "bytes"}
    if blob.local_path is not None:
        return BlobFileResponse(blob.local_path, headers=headers, media_type=_OCTETS)
    if redirect:
        url = await storage.redirect_url(blob.key, REDIRECT_EXPIRES_IN)
        if url is not None:
            return Response(
                None,
                307,
                headers={"Location": url, "Docker-Content-Digest": str(blob.digest)},
            )
    return await _streamed(request, storage, blob, headers)


async def _opened(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`chunks` with its first chunk already read: a store that cannot serve the object fails
    the request before its status is sent (503, not a 200 cut short)."""
    first = await anext(chunks, None)

    async def rest() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in chunks:
            yield chunk

    return rest()


async def _streamed(
    request: Request, storage: StorageDriver, blob: BlobLocation, headers: dict[str, str]
) -> Response:
    wanted = request.headers.get("range")
    ranges: list[tuple[int, int]] = []
    if wanted is not None:
        try:
            ranges = satisfiable_ranges(wanted, blob.size, 1)
        except RangeNotSatisfiable:
            return Response(None, 416, headers={**headers, "Content-Range": f"bytes */{blob.size}"})
    if not ranges:
        return StreamingResponse(
            await _opened(storage.read(blob.key)),
            headers={**headers, "Content-Length": str(blob.size)},
            media_type=_OCTETS,
        )
    [(start, end)] = ranges
    return StreamingResponse(
        await _opened(storage.read(blob.key, start, end - start)),
        status_code=206,
        headers={
            **headers,
            "Content-Length": str(end - start),
            "Content-Range": f"bytes {start}-{end - 1}/{blob.size}",
        },
        media_type=_OCTETS,
    )
