"""Reading an image's filesystem from its layers, each read once as a stream.

A layer is a tar archive, plain or compressed with gzip or zstd (told apart by their magic
bytes, whatever the media type says). Layers are applied in order as an overlay filesystem
applies them: a later file replaces an earlier one at the same path, `.wh.NAME` deletes NAME
(and all below it) from the layers beneath, and `.wh..wh..opq` empties its directory of
everything the layers beneath put there.

Only files some analyzer wants are read, and each is analysed as it streams past; what is kept
per path is the small result (packages, an OS), never the file. Whiteouts then delete results,
so a package removed in a later layer is not reported.

A file an analyzer cannot make sense of (a `package.json` nested beyond what the JSON reader
accepts, an analyzer's own failure) is skipped: its path and the reason are kept in
`LayerReader.skipped` and logged, and the rest of the image is still read.
"""

from __future__ import annotations

import gzip
import io
import logging
import posixpath
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Protocol

import zstandard

from cargohold.domain.inventory import Inventory, OperatingSystem, Package

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_READ_SIZE = 1 << 20
#: Errors of the layer's own stream: the layer cannot be read further.
_STREAM_ERRORS = (tarfile.TarError, OSError, EOFError, zstandard.ZstdError)

log = logging.getLogger(__name__)


class LayerError(Exception):
    """A layer that cannot be read as a (compressed) tar archive."""


class Unreadable(Exception):
    """Raised by an analyzer for a file it recognises but cannot read; the reason is noted."""


@dataclass(frozen=True, slots=True)
class FileResult:
    """What an analyzer learnt from one file."""

    packages: tuple[Package, ...] = ()
    os: OperatingSystem | None = None
    #: Among files that tell the OS, the highest rank wins (os-release over debian_version).
    os_rank: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """A regular file as an analyzer sees it: its path (no leading `/`), size and mode."""

    path: str
    size: int
    mode: int

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o111)


class Analyzer(Protocol):
    """Reads packages (or the OS) from files it recognises by path."""

    def wants(self, entry: Entry) -> bool: ...

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        """Read `stream` (the file's bytes, read forward only); None when it holds nothing."""
        ...


def decompressed(stream: IO[bytes]) -> IO[bytes]:
    """The tar bytes of a layer, whatever its compression."""
    buffered = (
        stream
        if isinstance(stream, io.BufferedReader)
        else io.BufferedReader(_Raw(stream), _READ_SIZE)
    )
    head = buffered.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), _READ_SIZE)
    if head.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, _READ_SIZE)
    return buffered


class _Raw(io.RawIOBase):
    """Any readable binary stream as a raw stream, so BufferedReader can peek at it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _normalise(name: str) -> str:
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


@dataclass
class Filesystem:
    """The analysed files of the layers applied so far, by path."""

    results: dict[str, FileResult] = field(default_factory=dict)

    def delete(self, path: str) -> None:
        """Remove `path` and everything below it."""
        prefix = path + "/"
        for key in [k for k in self.results if k == path or k.startswith(prefix)]:
            del self.results[key]

    def empty_directory(self, directory: str) -> None:
        prefix = directory + "/" if directory else ""
        for key in [k for k in self.results if k.startswith(prefix)]:
            del self.results[key]

    def inventory(self) -> Inventory:
        os: OperatingSystem | None = None
        rank = 0
        packages: list[Package] = []
        for path in sorted(self.results):
            result = self.results[path]
            if result.os is not None and result.os_rank > rank:
                os, rank = result.os, result.os_rank
            packages.extend(result.packages)
        return Inventory(os, tuple(sorted(set(packages))))


class LayerReader:
    """Applies layers in order and answers the inventory of the resulting filesystem."""

    def __init__(self, analyzers: Iterable[Analyzer]) -> None:
        self._analyzers = list(analyzers)
        self.filesystem = Filesystem()
        #: Files read by an analyzer, over all layers (for the benchmark's curiosity).
        self.files_analysed = 0
        #: Files skipped because their analyzer could not read them: (path, reason).
        self.skipped: list[tuple[str, str]] = []

    def add_layer(self, stream: IO[bytes], *, on_member: Callable[[], None] | None = None) -> None:
        """Read one layer (compressed or not) to its end and apply it over the layers before."""
        found: dict[str, FileResult | None] = {}
        replaced: list[str] = []
        deleted: list[str] = []
        opaque: list[str] = []
        try:
            with tarfile.open(fileobj=decompressed(stream), mode="r|") as archive:
                for member in archive:
                    if on_member is not None:
                        on_member()
                    path = _normalise(member.name)
                    if not path:
                        continue
                    directory, base = posixpath.split(path)
                    if base == OPAQUE:
                        opaque.append(directory)
                        continue
                    if base.startswith(WHITEOUT):
                        deleted.append(posixpath.join(directory, base[len(WHITEOUT) :]))
                        continue
                    if member.isdir():
                        continue
                    replaced.append(path)
                    result = self._analyze(archive, member, path, found)
                    if result is not None:
                        found[path] = result
        except _STREAM_ERRORS as exc:
            raise LayerError(f"the layer is not a readable tar archive: {exc}") from exc
        # Whiteouts and opaque directories hide what the layers *beneath* put there; what this
        # layer itself adds stays.
        for directory in opaque:
            self.filesystem.empty_directory(directory)
        for path in deleted:
            self.filesystem.delete(path)
        for path in replaced:
            self.filesystem.results.pop(path, None)
        for path, result in found.items():
            if result is not None:
                self.filesystem.results[path] = result

    def _analyze(
        self,
        archive: tarfile.TarFile,
        member: tarfile.TarInfo,
        path: str,
        found: dict[str, FileResult | None],
    ) -> FileResult | None:
        if member.islnk():
            # A hard link to a file earlier in this layer: the same bytes, analysed already.
            target = found.get(_normalise(member.linkname))
            if target is None:
                return None
            entry = Entry(path, member.size, member.mode)
            if any(a.wants(entry) for a in self._analyzers):
                return target
            return None
        if not member.isreg():
            return None
        entry = Entry(path, member.size, member.mode)
        for analyzer in self._analyzers:
            if analyzer.wants(entry):
                stream = archive.extractfile(member)
                if stream is None:
                    return None
                self.files_analysed += 1
                return self._read(analyzer, entry, stream)
        return None

    def _read(self, analyzer: Analyzer, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        try:
            return analyzer.analyze(entry, stream)
        except _STREAM_ERRORS:
            raise
        except Unreadable as exc:
            reason = str(exc)
        except Exception as exc:  # an analyzer's failure costs one file, not the scan
            reason = f"{type(exc).__name__}: {exc}"[:200]
        self.skipped.append((entry.path, reason))
        log.warning("scan skipped %r: %s", entry.path[:300], reason)
        return None

    def inventory(self) -> Inventory:
        return self.filesystem.inventory()
