"""Filesystem storage driver: objects as files under one root, staged uploads as temp files.

Layout under the root:

    blobs/<algorithm>/<hex[:2]>/<hex>     committed blobs (keys chosen by the service)
    _uploads/<upload-id>                  bytes of an upload in progress
    _tmp/<random>                         a `put` being written before its rename

Every object reaches its key by `rename` after `fsync`, so a reader (or a crash) never sees a
partial object at its final key. An upload has one writer at a time: appends and the commit take
an exclusive `flock` on the staging file, so two nodes serving one upload cannot interleave their
bytes or commit a file that is still being written. A staging file's modification time is
when it was last written or opened for writing: expiry leaves one in use alone.

Files are created 0600 and directories 0700, whatever the umask: only the server's user can
read stored blobs and staged uploads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from cargohold.ports import (
    KeyNotFound,
    ObjectInfo,
    StagedUpload,
    StorageError,
    UploadState,
    UploadStateInvalid,
)
from cargohold.privatefiles import create_private_file, make_private_dirs

READ_CHUNK = 1024 * 1024
_UPLOADS = "_uploads"
_TMP = "_tmp"
#: The names `_upload_path` accepts.
_STAGING_NAME = re.compile(r"[A-Za-z0-9-]+")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_staging(fd: int, path: Path) -> None:
    """Take the upload's writer lock on `fd`, open on `path`; refuse when another request holds
    it, or when the staging was committed or removed between the open and the lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UploadStateInvalid("another request is writing to this upload") from None
    try:
        current = os.stat(path)
    except FileNotFoundError:
        raise UploadStateInvalid("upload staging is missing") from None
    opened = os.fstat(fd)
    if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
        raise UploadStateInvalid("upload staging was replaced")


def _synced_staging(source: Path, size: int) -> int:
    """The staging file open, locked (`_lock_staging`), cut to `size` and synced; the caller
    closes the descriptor. UploadStateInvalid when it is missing or shorter than `size`."""
    try:
        fd = os.open(source, os.O_RDWR)
    except FileNotFoundError:
        raise UploadStateInvalid("upload staging is missing") from None
    try:
        _lock_staging(fd, source)
        if os.fstat(fd).st_size < size:
            raise UploadStateInvalid("upload staging is shorter than its recorded size")
        os.ftruncate(fd, size)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_staging(path: Path) -> None:
    os.close(create_private_file(path, exclusive=False))


class _FileUploadWriter:
    def __init__(self, driver: FilesystemDriver, state: UploadState, handle: BinaryIO) -> None:
        self._driver = driver
        self._state = state
        self._handle = handle

    async def write(
        self, chunks: Sequence[bytes], observe: Callable[[bytes], None] | None = None
    ) -> None:
        await anyio.to_thread.run_sync(self._write, chunks, observe)

    def _write(self, chunks: Sequence[bytes], observe: Callable[[bytes], None] | None) -> None:
        if observe is not None:
            for chunk in chunks:
                observe(chunk)
        self._handle.writelines(chunks)

    async def close(self) -> UploadState:
        await anyio.to_thread.run_sync(self._flush_close)
        return self._state

    def _flush_close(self) -> None:
        self._handle.flush()
        self._handle.close()

    async def abort(self) -> None:
        await anyio.to_thread.run_sync(self._handle.close)


class FilesystemDriver:
    name = "filesystem"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        make_private_dirs(self.root / _UPLOADS)
        make_private_dirs(self.root / _TMP)

    async def check(self) -> None:
        def writable() -> None:
            probe = self.root / _TMP / f"check-{secrets.token_hex(8)}"
            try:
                os.close(create_private_file(probe))
                probe.unlink()
            except OSError as exc:
                raise StorageError(f"cannot write under {self.root}: {exc}") from None

        await anyio.to_thread.run_sync(writable)

    def _path(self, key: str) -> Path:
        # Keys come from the service, never from a request; still refuse anything escaping root.
        if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key:
            raise StorageError(f"invalid key {key!r}")
        return self.root / key

    def _upload_path(self, state: UploadState) -> Path:
        upload_id = state.get("id")
        if not isinstance(upload_id, str) or not upload_id.replace("-", "").isalnum():
            raise UploadStateInvalid("upload state names no valid staging file")
        return self.root / _UPLOADS / upload_id

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = await anyio.to_thread.run_sync(path.stat)
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size)

    async def read(
        self, key: str, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await anyio.to_thread.run_sync(open, path, "rb")
        except FileNotFoundError:
            raise KeyNotFound(key) from None
        async for chunk in self._stream(handle, offset, length):
            yield chunk

    async def _stream(
        self, handle: BinaryIO, offset: int, length: int | None
    ) -> AsyncIterator[bytes]:
        try:
            if offset:
                handle.seek(offset)
            remaining = length
            while remaining is None or remaining > 0:
                want = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await anyio.to_thread.run_sync(handle.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))

    async def put(self, key: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put_sync, self._path(key), data)

    def _put_sync(self, final: Path, data: bytes) -> None:
        tmp = self.root / _TMP / secrets.token_hex(16)
        try:
            with os.fdopen(create_private_file(tmp), "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            make_private_dirs(final.parent)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            await anyio.to_thread.run_sync(path.unlink)

    async def list(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            found = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                rel_dir = Path(dirpath).relative_to(self.root).as_posix()
                if rel_dir.startswith((_UPLOADS, _TMP)):
                    dirnames.clear()
                    continue
                for name in filenames:
                    key = name if rel_dir == "." else f"{rel_dir}/{name}"
                    if key.startswith(prefix):
                        found.append(key)
            return sorted(found)

        return await anyio.to_thread.run_sync(walk)

    async def redirect_url(self, key: str, expires_in: int) -> str | None:
        return None

    async def begin_upload(self, upload_id: str) -> UploadState:
        state: UploadState = {"id": upload_id}
        path = self._upload_path(state)
        await anyio.to_thread.run_sync(_create_staging, path)
        return state

    async def open_upload(self, state: UploadState, offset: int) -> _FileUploadWriter:
        path = self._upload_path(state)

        def open_at() -> BinaryIO:
            try:
                handle = open(path, "r+b")  # noqa: SIM115 - handed to the writer
            except FileNotFoundError:
                raise UploadStateInvalid("upload staging is missing") from None
            try:
                _lock_staging(handle.fileno(), path)
            except BaseException:
                handle.close()
                raise
            size = os.fstat(handle.fileno()).st_size
            if size < offset:
                handle.close()
                raise UploadStateInvalid("upload staging is shorter than its recorded offset")
            # Bytes past the recorded offset belong to an append that never committed.
            handle.truncate(offset)
            # In use from now: expiry leaves staging written to since its cutoff alone.
            os.utime(handle.fileno())
            handle.seek(offset)
            return handle

        handle = await anyio.to_thread.run_sync(open_at)
        return _FileUploadWriter(self, state, handle)

    async def place_upload(self, state: UploadState, key: str, size: int) -> UploadState:
        source = self._upload_path(state)

        def flush() -> None:
            # The fsync, outside the caller's transaction; the commit's own is then quick.
            os.close(_synced_staging(source, size))

        await anyio.to_thread.run_sync(flush)
        return state

    async def commit_upload(self, state: UploadState, key: str, size: int) -> None:
        source = self._upload_path(state)
        final = self._path(key)

        def commit() -> None:
            fd = _synced_staging(source, size)
            try:
                make_private_dirs(final.parent)
                # Renamed under the lock: a writer that locks after this finds another inode.
                try:
                    os.replace(source, final)
                except FileNotFoundError:
                    # Removed meanwhile: the upload expired while the lock was awaited.
                    raise UploadStateInvalid("upload staging is missing") from None
            finally:
                os.close(fd)
            _fsync_dir(final.parent)

        await anyio.to_thread.run_sync(commit)

    async def read_upload(self, state: UploadState, size: int) -> AsyncIterator[bytes]:
        path = self._upload_path(state)
        try:
            handle = await anyio.to_thread.run_sync(open, path, "rb")
        except FileNotFoundError:
            raise UploadStateInvalid("upload staging is missing") from None
        async for chunk in self._stream(handle, 0, size):
            yield chunk

    async def abort_upload(self, state: UploadState) -> None:
        path = self._upload_path(state)
        with contextlib.suppress(FileNotFoundError):
            await anyio.to_thread.run_sync(path.unlink)

    async def staged_uploads(self) -> Sequence[StagedUpload]:
        def scan() -> list[StagedUpload]:
            found = []
            with os.scandir(self.root / _UPLOADS) as entries:
                for entry in entries:
                    if not _STAGING_NAME.fullmatch(entry.name):
                        continue
                    try:
                        if not entry.is_file(follow_symlinks=False):
                            continue
                        modified = entry.stat(follow_symlinks=False).st_mtime
                    except FileNotFoundError:
                        continue  # committed or removed while listed
                    found.append(StagedUpload(entry.name, modified, {"id": entry.name}))
            return found

        return await anyio.to_thread.run_sync(scan)
