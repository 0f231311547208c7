"""The ports the service layer depends on; adapters in storage/ implement them.

A storage driver knows nothing about registries: it stores bytes under keys and stages
uploads. The service decides the keys (see `service.paths`) and records everything else in the
metadata database, the single source of truth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: Opaque, JSON-serialisable driver state of one upload, stored in the `uploads` table.
UploadState = dict[str, Any]


class StorageError(Exception):
    """A driver failure that is not the caller's fault (I/O error, backend refusal)."""


class Unavailable(Exception):
    """A store the request needs (the metadata database, the blob store) cannot be reached or
    fails for now: the fronts answer 503 with Retry-After, and the request may be retried."""


class StorageUnavailable(StorageError, Unavailable):
    """The blob store cannot be reached or fails for now."""


class MetadataUnavailable(Unavailable):
    """The metadata database cannot be reached or fails for now."""


class KeyNotFound(StorageError):
    """A key that holds no object."""


class UploadStateInvalid(StorageError):
    """Upload staging that no longer matches its recorded state (lost, or shorter)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True, slots=True)
class StagedUpload:
    """Bytes staged for an upload, as the driver finds them."""

    upload_id: str
    #: When they were last written or opened for writing (seconds since the epoch).
    modified_at: float
    #: What `abort_upload` takes to remove them.
    state: UploadState


class UploadWriter(Protocol):
    """Appends to one staged upload; `close` returns the state to record."""

    async def write(
        self, chunks: Sequence[bytes], observe: Callable[[bytes], None] | None = None
    ) -> None:
        """Append `chunks` in order. `observe` sees each chunk before it is written, in the
        same worker thread as the write (the upload's digest is computed there)."""
        ...

    async def close(self) -> UploadState: ...

    async def abort(self) -> None:
        """Give up this append; the upload stays at the offset it was opened at."""


class StorageDriver(Protocol):
    name: str

    async def check(self) -> None:
        """Raise StorageError, with a message for the operator, when the store cannot serve
        (unreachable, credentials refused, no bucket); at start-up and for readiness."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None: ...

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream `length` bytes (to the end when None) from `offset`; KeyNotFound if absent."""
        ...

    def local_path(self, key: str) -> str | None:
        """A path the HTTP front may serve with sendfile, for drivers on a local disk."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Store `data` atomically: readers see the whole object or nothing."""
        ...

    async def delete(self, key: str) -> None: ...

    async def list(self, prefix: str) -> list[str]: ...

    async def redirect_url(self, key: str, expires_in: int) -> str | None:
        """A time-limited URL to fetch the object from directly, if the driver has one: valid
        for at least `expires_in` seconds, possibly longer, and possibly one it answered before."""
        ...

    async def begin_upload(self, upload_id: str) -> UploadState: ...

    async def open_upload(self, state: UploadState, offset: int) -> UploadWriter:
        """Continue the upload at `offset`, discarding anything staged past it."""
        ...

    async def place_upload(self, state: UploadState, key: str, size: int) -> UploadState:
        """Do the slow part of a commit before it, outside any database transaction: the
        state to commit. The S3 driver completes the multipart upload and copies it to `key`,
        keeping the staging; the filesystem driver makes the staged bytes durable."""
        ...

    async def commit_upload(self, state: UploadState, key: str, size: int) -> None:
        """Make the staged bytes durable at `key`, atomically; the staging is consumed. Given
        the state `place_upload` returned, only what is left: bytes placed at `key` and
        removed since are written again."""
        ...

    def read_upload(self, state: UploadState, size: int) -> AsyncIterator[bytes]:
        """Stream the staged bytes back (for re-hashing when no hash state was kept). A driver
        whose staging cannot be read back (S3 parts already uploaded) raises
        UploadStateInvalid."""
        ...

    async def abort_upload(self, state: UploadState) -> None: ...

    async def staged_uploads(self) -> Sequence[StagedUpload]:
        """Every upload with bytes staged, whether or not a session still names it."""
        ...
