"""The one upload machinery behind `/v2/` blob uploads and ECR's layer-upload API.

An upload is a row in `uploads` (offset, resumable hash state, driver state) plus bytes staged by
the storage driver. Each append streams the request body to the driver while hashing it, then
advances the row only if nobody moved it meanwhile; bytes of an append that did not finish are
never counted and are cut off by the next append. So a client may continue on any node, after a
restart, or after a dropped connection, from the offset the registry reports.

A session idle for `expiry` seconds is unknown from then on, and `UploadExpiry` removes it with
its bytes; a repository holds at most `max_open` sessions that are not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import anyio.to_thread

from cargohold.domain.digest import DEFAULT_ALGORITHM, Digest
from cargohold.domain.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    TooManyUploads,
)
from cargohold.domain.hashstate import ResumableHash
from cargohold.domain.records import Repository, Upload
from cargohold.ports import Changes, Metadata, StorageDriver, UploadState, UploadStateInvalid
from cargohold.service.paths import blob_key

#: Appends are written and hashed in slices of this size: large enough to keep thread hops
#: rare, small enough that memory never grows with the blob.
SLICE = 1024 * 1024

#: How long a session may stand idle, and how many one repository may hold, unless configured.
DEFAULT_EXPIRY = 86400.0
DEFAULT_MAX_OPEN = 1000


@dataclass(frozen=True, slots=True)
class CommittedBlob:
    digest: Digest
    size: int


async def _batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The body as it arrived, in lists of chunks of about `SLICE` bytes: each list is hashed
    and written in one trip to a worker thread, and no byte is copied to make it."""
    pending: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        size += len(chunk)
        if size >= SLICE:
            yield pending
            pending, size = [], 0
    if pending:
        yield pending


def _parse_upload_id(upload_id: str) -> str:
    try:
        return str(uuid.UUID(upload_id))
    except ValueError:
        raise BlobUploadUnknown(f"unknown upload {upload_id[:64]!r}") from None


def _expected_size(
    upload: Upload, start: int | None, end: int | None, content_length: int | None
) -> int | None:
    """The bytes an append declares (Content-Length, Content-Range), checked against each other
    and against the upload's offset; None when it declares none."""
    expected: int | None = content_length
    if start is not None:
        if start != upload.offset:
            raise RangeInvalid(
                f"chunk starts at {start} but the upload stands at {upload.offset}",
                offset=upload.offset,
            )
        if end is not None:
            if end < start:
                raise RangeInvalid(f"invalid range {start}-{end}", offset=upload.offset)
            span = end - start + 1
            if expected is not None and expected != span:
                raise SizeInvalid(
                    f"Content-Length {expected} does not match Content-Range {start}-{end}"
                )
            expected = span
    return expected


class UploadService:
    def __init__(
        self,
        store: Metadata,
        storage: StorageDriver,
        clock: Callable[[], float],
        *,
        expiry: float = DEFAULT_EXPIRY,
        max_open: int = DEFAULT_MAX_OPEN,
    ) -> None:
        self._store = store
        self._storage = storage
        self._clock = clock
        #: Seconds a session may stand idle; then it is unknown, and `UploadExpiry` removes it.
        self.expiry = expiry
        #: Sessions one repository may hold open at once.
        self.max_open = max_open
        # Two appends to one upload at once would interleave their bytes in the staging; the
        # database refuses the second, this refuses it before it writes anything.
        self._busy: set[str] = set()

    async def start(self, repository: Repository) -> Upload:
        upload_id = str(uuid.uuid4())
        state = await self._storage.begin_upload(upload_id)
        hasher = ResumableHash(DEFAULT_ALGORITHM)
        now = self._clock()
        async with self._store.write(changes=Changes.NOTHING) as tx:
            created = await tx.uploads.create_upload(
                upload_id,
                repository.id,
                DEFAULT_ALGORITHM,
                hasher.state(),
                state,
                now,
                limit=self.max_open,
                live_since=now - self.expiry,
            )
        if not created:
            await self._storage.abort_upload(state)
            raise TooManyUploads(
                f"repository {repository.name} has {self.max_open} open upload sessions, the "
                "most it may hold: complete or cancel one, or wait until idle ones expire"
            )
        return Upload(
            upload_id, repository.id, 0, DEFAULT_ALGORITHM, hasher.state(), state, now, now
        )

    async def get(self, repository: Repository, upload_id: str) -> Upload:
        upload_id = _parse_upload_id(upload_id)
        async with self._store.read() as tx:
            upload = await tx.uploads.get_upload(upload_id)
        if (
            upload is None
            or upload.repository_id != repository.id
            or upload.updated_at < self._clock() - self.expiry
        ):
            raise BlobUploadUnknown(f"unknown upload {upload_id}")
        return upload

    async def append(
        self,
        repository: Repository,
        upload_id: str,
        body: AsyncIterator[bytes],
        *,
        start: int | None = None,
        end: int | None = None,
        content_length: int | None = None,
    ) -> Upload:
        """Append the body at the upload's offset; `start`/`end` come from a Content-Range."""
        upload = await self.get(repository, upload_id)
        with self._exclusive(upload):
            return await self._append(upload, body, start, end, content_length)

    @contextlib.contextmanager
    def _exclusive(self, upload: Upload) -> Iterator[None]:
        """One request at a time per upload: an append and a commit at once would let the
        append's writes land in the committed blob, under a digest they do not match."""
        if upload.id in self._busy:
            raise RangeInvalid(
                "another request on this upload is in progress", offset=upload.offset
            )
        self._busy.add(upload.id)
        try:
            yield
        finally:
            self._busy.discard(upload.id)

    async def _append(
        self,
        upload: Upload,
        body: AsyncIterator[bytes],
        start: int | None,
        end: int | None,
        content_length: int | None,
    ) -> Upload:
        expected = _expected_size(upload, start, end, content_length)
        hasher = ResumableHash.restore(upload.hash_algorithm, upload.hash_state)
        written, state = await self._write(upload, body, expected, hasher)
        return await self._advance(upload, written, state, hasher)

    async def _write(
        self,
        upload: Upload,
        body: AsyncIterator[bytes],
        expected: int | None,
        hasher: ResumableHash | None,
    ) -> tuple[int, UploadState]:
        """Stream the body to the staging at the upload's offset, hashing it on the way; the
        bytes written and the driver's state after them. A failed write is aborted."""
        try:
            writer = await self._storage.open_upload(upload.driver_state, upload.offset)
        except UploadStateInvalid as exc:
            raise BlobUploadUnknown(
                f"upload {upload.id} can no longer be continued: {exc}"
            ) from None
        written = 0
        try:
            async for batch in _batches(body):
                written += sum(len(chunk) for chunk in batch)
                if expected is not None and written > expected:
                    raise SizeInvalid(f"body is longer than the declared {expected} bytes")
                await writer.write(batch, None if hasher is None else hasher.update)
            if expected is not None and written != expected:
                raise SizeInvalid(f"body has {written} bytes, {expected} were declared")
            state: UploadState = await writer.close()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await writer.abort()
            raise
        return written, state

    async def _advance(
        self, upload: Upload, written: int, state: UploadState, hasher: ResumableHash | None
    ) -> Upload:
        """Record the append, unless the upload moved meanwhile (BlobUploadInvalid)."""
        now = self._clock()
        new_offset = upload.offset + written
        hash_state = hasher.state() if hasher is not None else None
        # The part written before this one is no longer the last: it joins the earlier parts.
        smallest = upload.smallest_earlier_part
        if upload.last_part_size is not None:
            previous = upload.last_part_size
            smallest = previous if smallest is None else min(smallest, previous)
        advanced_upload = dataclasses.replace(
            upload,
            offset=new_offset,
            hash_state=hash_state,
            driver_state=state,
            updated_at=now,
            part_count=upload.part_count + 1,
            last_part_size=written,
            smallest_earlier_part=smallest,
        )
        async with self._store.write(changes=Changes.NOTHING) as tx:
            advanced = await tx.uploads.advance_upload(
                upload.id,
                from_offset=upload.offset,
                to_offset=new_offset,
                hash_state=hash_state,
                driver_state=state,
                now=now,
                part_count=advanced_upload.part_count,
                last_part_size=written,
                smallest_earlier_part=smallest,
            )
            gone = not advanced and await tx.uploads.get_upload(upload.id) is None
        if gone:
            raise BlobUploadUnknown(f"upload {upload.id} expired while this chunk was written")
        if not advanced:
            raise BlobUploadInvalid("the upload changed while this chunk was written")
        return advanced_upload

    async def finish(
        self,
        repository: Repository,
        upload_id: str,
        digest_text: str | None,
        body: AsyncIterator[bytes] | None,
        *,
        start: int | None = None,
        end: int | None = None,
        content_length: int | None = None,
    ) -> CommittedBlob:
        """Append a last chunk (if any), verify the digest and commit the blob."""
        if not digest_text:
            raise DigestInvalid("the digest parameter is required to complete an upload")
        digest = Digest.parse(digest_text)
        upload = await self.get(repository, upload_id)
        with self._exclusive(upload):
            if body is not None:
                upload = await self._append(upload, body, start, end, content_length)
            try:
                actual = await self._digest_of(upload, digest.algorithm)
            except UploadStateInvalid as exc:
                raise BlobUploadUnknown(
                    f"upload {upload.id} can no longer be completed: {exc}"
                ) from None
            if actual != digest.hex:
                await self._discard(upload)
                raise DigestInvalid(
                    f"provided digest {digest} does not match the uploaded content "
                    f"{digest.algorithm}:{actual}"
                )
            return await self._commit(repository, upload, digest)

    async def _digest_of(self, upload: Upload, algorithm: str) -> str:
        if algorithm == upload.hash_algorithm:
            hasher = ResumableHash.restore(upload.hash_algorithm, upload.hash_state)
            if hasher is not None:
                return hasher.hexdigest()
        # No usable state (another algorithm, or no libcrypto): read the staged bytes once more.
        hasher = ResumableHash(algorithm)
        async for chunk in self._storage.read_upload(upload.driver_state, upload.offset):
            await anyio.to_thread.run_sync(hasher.update, chunk)
        return hasher.hexdigest()

    async def _commit(
        self, repository: Repository, upload: Upload, digest: Digest
    ) -> CommittedBlob:
        key = blob_key(digest)
        try:
            # The slow storage work (S3: complete, copy to the blob's key) before the
            # transaction, which then holds the blob's row and a connection (SQLite: the
            # writer lock) only for what is left.
            state = await self._storage.place_upload(upload.driver_state, key, upload.offset)
            # The blob's row is held (inserted, or touched and taken back from garbage
            # collection) until its bytes are at their key: the collector deletes bytes only
            # while holding the same row, so once the commit holds it, bytes the collector
            # removed after they were placed are written again and the rest stay.
            async with self._store.write(changes=Changes.CONTENT) as tx:
                now = self._clock()
                await tx.blobs.reserve_blob(str(digest), upload.offset, now)
                await self._storage.commit_upload(state, key, upload.offset)
                await tx.blobs.link_blob(repository.id, str(digest), now)
                await tx.uploads.delete_upload(upload.id)
        except UploadStateInvalid as exc:
            raise BlobUploadUnknown(
                f"upload {upload.id} can no longer be completed: {exc}"
            ) from None
        return CommittedBlob(digest, upload.offset)

    async def _discard(self, upload: Upload) -> None:
        async with self._store.write(changes=Changes.CONTENT) as tx:
            await tx.uploads.delete_upload(upload.id)
        await self._storage.abort_upload(upload.driver_state)

    async def cancel(self, repository: Repository, upload_id: str) -> None:
        upload = await self.get(repository, upload_id)
        await self._discard(upload)

    async def monolithic(
        self,
        repository: Repository,
        digest_text: str,
        body: AsyncIterator[bytes],
        content_length: int | None,
    ) -> CommittedBlob:
        """A whole blob in one request (`POST ?digest=`)."""
        digest = Digest.parse(digest_text)
        upload = await self.start(repository)
        try:
            return await self.finish(
                repository, upload.id, str(digest), body, content_length=content_length
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._discard_quietly(upload)
            raise

    async def _discard_quietly(self, upload: Upload) -> None:
        # Cleanup of a request that already failed: its own error is the one to report.
        with contextlib.suppress(Exception):
            await self._discard(upload)
