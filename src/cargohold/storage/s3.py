"""S3-compatible storage driver: objects under a prefix of one bucket, uploads as multipart
uploads whose part list travels in the upload's state.

Layout under the prefix:

    blobs/<algorithm>/<hex[:2]>/<hex>     committed blobs (keys chosen by the service)
    _uploads/<upload-id>/data             the multipart upload of a session, completed on commit
    _uploads/<upload-id>/tail-<token>     bytes received since the last part (below a part's size)

S3 takes parts of at least 5 MiB (but the last), and OCI clients send chunks of any size. An
append therefore keeps what it receives in memory up to `part_size` and uploads it as the next
part; what is left when the append ends is a part too if it holds 5 MiB, else it is stored as
the session's *tail* object, read back by the next append, which may run on another node. The
state (multipart upload id, each part's ETag and size, the tail's name and size) is what the
service stores in `uploads.driver_state`.
Memory per append is bounded by one part, never by the blob.

A tail is written under a fresh name each time and named by the state, so two appends racing on
one session never mix their bytes: the database keeps one of the states, and that state names
its own tail. Before completing, the recorded ETags are compared with the parts the store
holds, so a part overwritten by a losing append fails the commit instead of producing a blob
whose bytes the verified digest does not describe. A multipart upload is bound to its key, so
the commit completes it at the session's `data` key and copies that object to the blob's key:
`place_upload`, before the service's transaction. `commit_upload`, inside it, checks the copy
is still there (copying again from the kept staging if the collector removed it meanwhile) and
removes the staging.

Signing a presigned URL is most of the work of a blob GET that redirects to the store, and a
pulled layer is fetched again and again. `redirect_url` therefore signs each URL for twice the
life asked for and hands the same URL out again while at least that life remains
(`_SignedUrls`): every URL it answers is still valid for `expires_in` seconds, as asked.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio.to_thread

from cargohold.ports import (
    KeyNotFound,
    ObjectInfo,
    StagedUpload,
    StorageError,
    UploadState,
    UploadStateInvalid,
)
from cargohold.storage.s3client import S3Calls, S3Settings
from cargohold.storage.s3parts import PartList, complete_upload, copy_object

READ_CHUNK = 1024 * 1024
#: S3's smallest part but the last.
MIN_PART = 5 * 1024 * 1024
DEFAULT_PART = 8 * 1024 * 1024
_UPLOADS = "_uploads/"
_UPLOAD_ID = re.compile(r"[A-Za-z0-9-]{1,128}")
_TOKEN = re.compile(r"[0-9a-f]{32}")
_MULTIPART_ID = re.compile(r"[A-Za-z0-9._~=+/-]{1,1024}")
#: The source of a placed upload that was a multipart upload: its completed `data` object.
_DATA = "data"
#: How many signed URLs a driver keeps for reuse (a few hundred bytes each).
SIGNED_URLS = 4096


class _SignedUrls:
    """Presigned URLs for reuse, at most `size`, the least recently used going first: a URL is
    signed for twice the life asked for and handed out while at least that life remains."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self._size = size
        self._clock = clock
        self._urls: OrderedDict[tuple[str, int], tuple[str, float]] = OrderedDict()

    def get(self, key: str, expires_in: int, sign: Callable[[str, int], str]) -> str:
        now = self._clock()
        found = self._urls.get((key, expires_in))
        if found is not None and found[1] - now >= expires_in:
            self._urls.move_to_end((key, expires_in))
            return found[0]
        url = sign(key, 2 * expires_in)
        # The URL's life counts from its X-Amz-Date, in whole seconds: up to one before `now`.
        self._urls[(key, expires_in)] = (url, now + 2 * expires_in - 1)
        self._urls.move_to_end((key, expires_in))
        while len(self._urls) > self._size:
            self._urls.popitem(last=False)
        return url


def check_key(key: str) -> str:
    if (
        not key
        or key.startswith("/")
        or ".." in key.split("/")
        or "\\" in key
        or key.startswith(_UPLOADS)
    ):
        raise StorageError(f"invalid key {key!r}")
    return key


class _Staging:
    """One session's state, validated: nothing read from the database names another's keys."""

    def __init__(self, state: UploadState) -> None:
        upload_id, multipart, tail = state.get("id"), state.get("mpu"), state.get("tail")
        parts, tail_size = state.get("parts", []), state.get("tail_size", 0)
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadStateInvalid("upload state names no valid staging")
        if multipart is not None and (
            not isinstance(multipart, str) or not _MULTIPART_ID.fullmatch(multipart)
        ):
            raise UploadStateInvalid("upload state names no valid multipart upload")
        if tail is not None and (not isinstance(tail, str) or not _TOKEN.fullmatch(tail)):
            raise UploadStateInvalid("upload state names no valid tail")
        if not isinstance(tail_size, int) or tail_size < 0 or (tail is None and tail_size):
            raise UploadStateInvalid("upload state has an invalid tail size")
        self.id: str = upload_id
        self.multipart: str | None = multipart
        self.parts = PartList.from_state(parts)
        self.tail: str | None = tail
        self.tail_size: int = tail_size

    @property
    def size(self) -> int:
        return self.parts.size + self.tail_size

    def state(self) -> UploadState:
        return {
            "id": self.id,
            "mpu": self.multipart,
            "parts": self.parts.to_state(),
            "tail": self.tail,
            "tail_size": self.tail_size,
        }


class _Placed:
    """A session whose bytes `place_upload` copied to the blob's key; the staging they came
    from (`source`: the completed multipart upload, a tail, or None for no bytes) stays until
    the commit, which copies again from it should the key have lost them."""

    def __init__(self, state: UploadState) -> None:
        upload_id, key, source, size = (state.get(k) for k in ("id", "placed", "source", "size"))
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadStateInvalid("upload state names no valid staging")
        if not isinstance(key, str) or not isinstance(size, int) or size < 0:
            raise UploadStateInvalid("upload state names no valid placement")
        if source is not None and source != _DATA and not _TOKEN.fullmatch(str(source)):
            raise UploadStateInvalid("upload state names no valid source")
        self.id: str = upload_id
        self.key: str = check_key(key)
        self.source: str | None = source
        self.size: int = size

    def state(self) -> UploadState:
        return {"id": self.id, "placed": self.key, "source": self.source, "size": self.size}


class _S3UploadWriter:
    def __init__(
        self, driver: S3Driver, staging: _Staging, buffered: list[bytes], old_tail: str | None
    ) -> None:
        self._driver = driver
        self._staging = staging
        self._buffer = buffered
        self._buffered = sum(len(each) for each in buffered)
        self._old_tail = old_tail
        #: Whether the tail must be written anew on close.
        self.dirty = False

    async def write(
        self, chunks: Sequence[bytes], observe: Callable[[bytes], None] | None = None
    ) -> None:
        if observe is not None:
            await anyio.to_thread.run_sync(_observe_all, chunks, observe)
        for chunk in chunks:
            if chunk:
                self._buffer.append(chunk)
                self._buffered += len(chunk)
                self.dirty = True
        if self._buffered >= self._driver.part_size:
            await self._flush_part()

    async def _flush_part(self) -> None:
        driver, staging = self._driver, self._staging
        if staging.multipart is None:
            created = await driver.calls.call(
                "create_multipart_upload", "starting an upload", Key=driver.data_key(staging.id)
            )
            staging.multipart = str(created["UploadId"])
        body = b"".join(self._buffer)
        number = len(staging.parts) + 1
        answer = await driver.calls.call(
            "upload_part",
            f"part {number} of upload {staging.id}",
            Key=driver.data_key(staging.id),
            UploadId=staging.multipart,
            PartNumber=number,
            Body=body,
        )
        staging.parts.append(str(answer["ETag"]), len(body))
        self._buffer, self._buffered = [], 0

    async def close(self) -> UploadState:
        driver, staging = self._driver, self._staging
        if not self.dirty:
            return staging.state()
        if self._buffered >= MIN_PART:
            # A part S3 takes anywhere: the bytes go to the store once, not as a tail that the
            # next append or the commit reads back and uploads again.
            await self._flush_part()
        if self._buffered:
            token = secrets.token_hex(16)
            await driver.calls.call(
                "put_object",
                f"the tail of upload {staging.id}",
                Key=driver.tail_key(staging.id, token),
                Body=b"".join(self._buffer),
            )
            staging.tail, staging.tail_size = token, self._buffered
        else:
            staging.tail, staging.tail_size = None, 0
        self._buffer, self._buffered = [], 0
        if self._old_tail is not None and self._old_tail != staging.tail:
            await driver.calls.call(
                "delete_object",
                f"an old tail of upload {staging.id}",
                Key=driver.tail_key(staging.id, self._old_tail),
            )
        return staging.state()

    async def abort(self) -> None:
        # Parts this append uploaded are named by no recorded state: the next append
        # overwrites them, and a commit lists only recorded parts.
        self._buffer, self._buffered = [], 0


def _observe_all(chunks: Sequence[bytes], observe: Callable[[bytes], None]) -> None:
    for chunk in chunks:
        observe(chunk)


class S3Driver:
    name = "s3"

    def __init__(
        self,
        settings: S3Settings,
        *,
        part_size: int = DEFAULT_PART,
        calls: S3Calls | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART}")
        prefix = settings.prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.part_size = part_size
        self.calls = calls if calls is not None else S3Calls(settings)
        self._signed = _SignedUrls(SIGNED_URLS, clock)

    # -- keys --------------------------------------------------------------------------------

    def _object(self, key: str) -> str:
        return self.prefix + check_key(key)

    def data_key(self, upload_id: str) -> str:
        return f"{self.prefix}{_UPLOADS}{upload_id}/data"

    def tail_key(self, upload_id: str, token: str) -> str:
        return f"{self.prefix}{_UPLOADS}{upload_id}/tail-{token}"

    # -- objects -----------------------------------------------------------------------------

    async def check(self) -> None:
        await self.calls.check()

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = await self.calls.call("head_object", key, Key=self._object(key))
        except KeyNotFound:
            return None
        return ObjectInfo(key, int(head["ContentLength"]))

    async def read(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        name = self._object(key)
        if length == 0:
            if await self.stat(key) is None:
                raise KeyNotFound(key)
            return
        async for chunk in self._get(name, offset, length, key):
            yield chunk

    async def _get(
        self, name: str, offset: int, length: int | None, what: str
    ) -> AsyncIterator[bytes]:
        params: dict[str, Any] = {"Key": name}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            params["Range"] = f"bytes={offset}-{end}"
        try:
            answer = await self.calls.call("get_object", what, **params)
        except StorageError as exc:
            if "InvalidRange" in str(exc):  # the range starts past the end
                return
            raise
        body = answer["Body"]
        try:
            while True:
                chunk: bytes = await self.calls.in_thread(
                    lambda: body.read(READ_CHUNK), f"reading {what}"
                )
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def local_path(self, key: str) -> str | None:
        return None

    async def put(self, key: str, data: bytes) -> None:
        await self.calls.call("put_object", key, Key=self._object(key), Body=data)

    async def delete(self, key: str) -> None:
        await self.calls.call("delete_object", key, Key=self._object(key))

    async def list(self, prefix: str) -> list[str]:
        found = await self.calls.list_keys(self.prefix + prefix)
        keys = [name.removeprefix(self.prefix) for name, _ in found]
        return sorted(key for key in keys if not key.startswith(_UPLOADS))

    async def redirect_url(self, key: str, expires_in: int) -> str | None:
        """A presigned GET of the object, valid for at least `expires_in` seconds (signed for
        up to twice that: see the module's notes)."""
        return self._signed.get(self._object(key), expires_in, self.calls.presign)

    # -- uploads -----------------------------------------------------------------------------

    async def begin_upload(self, upload_id: str) -> UploadState:
        return _Staging({"id": upload_id}).state()

    async def open_upload(self, state: UploadState, offset: int) -> _S3UploadWriter:
        staging = _Staging(state)
        if offset > staging.size:
            raise UploadStateInvalid("the upload is shorter than the offset asked for")
        # Back to a part's end: later parts are dropped from the list, never rewritten.
        if offset < staging.parts.size and not staging.parts.truncate(offset):
            raise UploadStateInvalid("cannot continue the upload inside an uploaded part")
        buffered: list[bytes] = []
        keep = offset - staging.parts.size
        if staging.tail is not None:
            tail = await self._read_tail(staging)
            if keep > 0:
                buffered.append(tail[:keep])
        elif staging.multipart is not None:
            await self._check_multipart(staging)
        writer = _S3UploadWriter(self, staging, buffered, staging.tail)
        writer.dirty = keep != staging.tail_size
        return writer

    async def _read_tail(self, staging: _Staging) -> bytes:
        assert staging.tail is not None
        try:
            data = b"".join(
                [
                    chunk
                    async for chunk in self._get(
                        self.tail_key(staging.id, staging.tail), 0, None, "an upload's tail"
                    )
                ]
            )
        except KeyNotFound:
            raise UploadStateInvalid("upload staging is missing") from None
        if len(data) < staging.tail_size:
            raise UploadStateInvalid("upload staging is shorter than its recorded size")
        return data

    async def _check_multipart(self, staging: _Staging) -> None:
        await self.calls.call(
            "list_parts",
            f"upload {staging.id}",
            Key=self.data_key(staging.id),
            UploadId=staging.multipart,
            MaxParts=1,
        )

    async def place_upload(self, state: UploadState, key: str, size: int) -> UploadState:
        staging = _Staging(state)
        if size != staging.size:
            raise UploadStateInvalid(f"the upload holds {staging.size} bytes, not {size}")
        source = staging.tail
        if staging.multipart is not None:
            await complete_upload(self, staging, size)
            source = _DATA
        placed = _Placed({"id": staging.id, "placed": key, "source": source, "size": size})
        await self._copy_staged(placed)
        return placed.state()

    async def _copy_staged(self, placed: _Placed) -> None:
        final = self._object(placed.key)
        if placed.source is None:
            await self.calls.call("put_object", "an empty blob", Key=final, Body=b"")
            return
        if placed.source == _DATA:
            source = self.data_key(placed.id)
        else:
            source = self.tail_key(placed.id, placed.source)
        try:
            await copy_object(self, source, final, placed.size)
        except KeyNotFound:
            raise UploadStateInvalid("upload staging is missing") from None

    async def commit_upload(self, state: UploadState, key: str, size: int) -> None:
        if "placed" not in state:
            state = await self.place_upload(state, key, size)
        placed = _Placed(state)
        if placed.key != key or placed.size != size:
            raise UploadStateInvalid("the upload was placed at another key or size")
        # Placed before the caller held the blob's row: the collector may have removed the
        # bytes since. Holding the row now, nothing removes them until it is released.
        info = await self.stat(key)
        if info is None or info.size != size:
            await self._copy_staged(placed)
        await self._remove_staging(placed.id)

    async def read_upload(self, state: UploadState, size: int) -> AsyncIterator[bytes]:
        staging = _Staging(state)
        if staging.multipart is not None:
            raise UploadStateInvalid("uploaded parts cannot be read back before the commit")
        if staging.tail is None or size <= 0:
            return
        tail = await self._read_tail(staging)
        for start in range(0, min(size, len(tail)), READ_CHUNK):
            yield tail[start : min(start + READ_CHUNK, size)]

    async def abort_upload(self, state: UploadState) -> None:
        staging = _Staging(state)
        multiparts = {staging.multipart} if staging.multipart else set()
        answer = await self.calls.call(
            "list_multipart_uploads", "listing uploads", Prefix=self.data_key(staging.id)
        )
        multiparts.update(str(each["UploadId"]) for each in answer.get("Uploads", []))
        for multipart in multiparts:
            with contextlib.suppress(UploadStateInvalid):  # already completed or aborted
                await self.calls.call(
                    "abort_multipart_upload",
                    f"aborting upload {staging.id}",
                    Key=self.data_key(staging.id),
                    UploadId=multipart,
                )
        await self._remove_staging(staging.id)

    async def _remove_staging(self, upload_id: str) -> None:
        for name, _ in await self.calls.list_keys(f"{self.prefix}{_UPLOADS}{upload_id}/"):
            await self.calls.call("delete_object", f"staging of upload {upload_id}", Key=name)

    async def staged_uploads(self) -> Sequence[StagedUpload]:
        root = f"{self.prefix}{_UPLOADS}"
        latest: dict[str, float] = {}
        for name, modified in await self.calls.list_keys(root):
            upload_id = name.removeprefix(root).split("/", 1)[0]
            latest[upload_id] = max(modified, latest.get(upload_id, 0.0))
        answer = await self.calls.call("list_multipart_uploads", "listing uploads", Prefix=root)
        for each in answer.get("Uploads", []):
            upload_id = str(each["Key"]).removeprefix(root).split("/", 1)[0]
            touched = await self._last_part_time(each)
            latest[upload_id] = max(touched, latest.get(upload_id, 0.0))
        return [
            StagedUpload(upload_id, modified, {"id": upload_id})
            for upload_id, modified in sorted(latest.items())
            if _UPLOAD_ID.fullmatch(upload_id)
        ]

    async def _last_part_time(self, upload: dict[str, Any]) -> float:
        latest = float(upload["Initiated"].timestamp())
        try:
            answer = await self.calls.call(
                "list_parts", "listing parts", Key=upload["Key"], UploadId=upload["UploadId"]
            )
        except UploadStateInvalid:
            return latest
        for part in answer.get("Parts", []):
            latest = max(latest, float(part["LastModified"].timestamp()))
        return latest
