"""Go binaries: the module versions the Go linker records in every binary's build info.

Since Go 1.18 the `.go.buildinfo` data starts with the 14-byte magic `\\xff Go buildinf:`, a
pointer-size byte and a flags byte (bit 2: strings inline), padded to 32 bytes, followed by two
varint-length-prefixed strings: the Go version (`go1.21.5`) and the module info, whose text
(between 16-byte sentinels) has lines `path`, `mod`, `dep` and `=>` (a replacement of the dep
before it), tab-separated — the format `debug/buildinfo` and `runtime/debug` document.

The magic sits 16-byte aligned at the start of its section; it is found by scanning the file as
it streams by, so no ELF, Mach-O or PE parsing is needed. Binaries from Go before 1.18 (build
info behind pointers) report nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Protocol

from cargohold.domain.inventory import GOLANG, Package
from cargohold.scanning.layers import Entry, FileResult

MAGIC = b"\xff Go buildinf:"
HEADER = 32
FLAG_INLINE = 0x2
_CHUNK = 1 << 20
#: How much follows the magic at most (version + module info of a large program).
_TAIL = 1 << 20
_EXECUTABLE_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe")
MAX_BINARY = 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BuildInfo:
    go_version: str
    main_module: str | None
    main_version: str | None
    #: (module path, version) of each dependency, replacements applied.
    deps: tuple[tuple[str, str], ...]


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while offset < len(data):
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def _string(data: bytes, offset: int) -> tuple[bytes, int]:
    length, offset = _uvarint(data, offset)
    if offset + length > len(data):
        raise ValueError("truncated string")
    return data[offset : offset + length], offset + length


def parse_modinfo(raw: bytes) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    # Sentinels: 16 bytes before the text and 16 after, the text ending in a newline.
    if len(raw) >= 33 and raw[-17:-16] == b"\n":
        raw = raw[16:-16]
    modinfo = raw.decode("utf-8", errors="replace")
    main_module = main_version = None
    deps: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] == "mod" and len(fields) >= 3:
            main_module, main_version = fields[1], fields[2]
        elif fields[0] == "dep" and len(fields) >= 3:
            deps.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 3 and deps:
            # The replacement of the dep just before: its path and version are what is built.
            deps[-1] = (fields[1], fields[2])
    return main_module, main_version, deps


def parse_buildinfo(data: bytes) -> BuildInfo | None:
    """Build info from bytes that start at the magic."""
    if not data.startswith(MAGIC) or len(data) < HEADER:
        return None
    flags = data[15]
    if not flags & FLAG_INLINE:
        return None  # Go < 1.18: strings behind pointers into the data segment.
    try:
        version, offset = _string(data, HEADER)
        modinfo, _ = _string(data, offset)
    except ValueError:
        return None
    main_module, main_version, deps = parse_modinfo(modinfo)
    return BuildInfo(
        version.decode("utf-8", errors="replace"), main_module, main_version, tuple(deps)
    )


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def find_buildinfo(stream: Readable) -> BuildInfo | None:
    """Scan a binary as it streams by for 16-byte aligned build info."""
    window = b""
    base = 0  # file offset of window[0]
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        window += chunk
        start = 0
        while (at := window.find(MAGIC, start)) >= 0:
            if (base + at) % 16 == 0:
                tail = window[at : at + _TAIL]
                while len(tail) < _TAIL and (more := stream.read(_CHUNK)):
                    tail += more
                return parse_buildinfo(tail)
            start = at + 1
        keep = len(MAGIC) - 1
        base += len(window) - keep
        window = window[-keep:]
    return None


def _go_version(text: str) -> str | None:
    """`go1.21.5` → `1.21.5`; development toolchains (`devel …`) have no release."""
    if not text.startswith("go"):
        return None
    version = text[2:].split()[0] if text[2:] else ""
    # Experiments add `X:…` after a space; pre-releases look like 1.22rc1.
    return version or None


class GoAnalyzer:
    """Executables only: Go writes build info into every binary it links."""

    def wants(self, entry: Entry) -> bool:
        return entry.executable and 1024 <= entry.size <= MAX_BINARY

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        head = stream.read(4)
        if not head.startswith(_EXECUTABLE_MAGIC):
            return None
        info = find_buildinfo(_Prefixed(head, stream))
        if info is None:
            return None
        packages = [Package(GOLANG, path, version, entry.path) for path, version in info.deps]
        if info.main_module and info.main_version and info.main_version != "(devel)":
            packages.append(Package(GOLANG, info.main_module, info.main_version, entry.path))
        stdlib = _go_version(info.go_version)
        if stdlib:
            packages.append(Package(GOLANG, "stdlib", stdlib, entry.path))
        return FileResult(tuple(packages)) if packages else None


class _Prefixed:
    """`head` followed by the rest of `stream`, read forward."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head + self._stream.read(max(size - len(head), 0) if size >= 0 else -1)
        return self._stream.read(size)
