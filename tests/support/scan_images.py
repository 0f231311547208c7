"""Images with known contents for the scanner, built in Python: tar layers (gzip, zstd, plain)
holding a dpkg status file, dpkg status.d stanzas, an apk database, an rpmdb.sqlite, Python
dist-info and egg-info, node_modules, a Go binary's build info and a jar with pom.properties,
with whiteouts and opaque directories across layers.

Each image's expected scan result (OS, packages of note, and every finding against the OSV
fixtures in tests/fixtures/osv) is written beside it in tests/fixtures/images/<name>.json.
"""

from __future__ import annotations

import io
import json
import sqlite3
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from support.images import (
    OCI_LAYER,
    OCI_LAYER_GZIP,
    Descriptor,
    Layer,
    gzip_bytes,
    sha256_digest,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OSV_FIXTURES = FIXTURES / "osv"
IMAGE_FIXTURES = FIXTURES / "images"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

# -- tar layers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class File:
    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Symlink:
    path: str
    target: str


@dataclass(frozen=True)
class Whiteout:
    """Deletes `path` from the layers beneath."""

    path: str


@dataclass(frozen=True)
class Opaque:
    """Empties `directory` of what the layers beneath put there."""

    directory: str


Entry = File | Symlink | Whiteout | Opaque


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def tar_layer(entries: Sequence[Entry]) -> bytes:
    buf = io.BytesIO()
    directories: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def parents(path: str) -> None:
            parts = path.split("/")[:-1]
            for i in range(len(parts)):
                directory = "/".join(parts[: i + 1])
                if directory not in directories:
                    directories.add(directory)
                    tar.addfile(_info(directory, tarfile.DIRTYPE, 0o755))

        for entry in entries:
            if isinstance(entry, File):
                parents(entry.path)
                info = _info(entry.path, tarfile.REGTYPE, entry.mode, len(entry.data))
                tar.addfile(info, io.BytesIO(entry.data))
            elif isinstance(entry, Symlink):
                parents(entry.path)
                info = _info(entry.path, tarfile.SYMTYPE, 0o777)
                info.linkname = entry.target
                tar.addfile(info)
            elif isinstance(entry, Whiteout):
                directory, _, name = entry.path.rpartition("/")
                path = f"{directory}/.wh.{name}" if directory else f".wh.{name}"
                parents(path)
                tar.addfile(_info(path, tarfile.REGTYPE, 0o644))
            else:
                path = f"{entry.directory}/.wh..wh..opq"
                parents(path)
                tar.addfile(_info(path, tarfile.REGTYPE, 0o644))
    return buf.getvalue()


def compress(tar: bytes, how: str) -> tuple[bytes, str]:
    if how == "gzip":
        return gzip_bytes(tar), OCI_LAYER_GZIP
    if how == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(tar), OCI_LAYER_ZSTD
    return tar, OCI_LAYER


# -- package databases --------------------------------------------------------------------------


def dpkg_stanza(
    name: str, version: str, source: str | None = None, *, status: str = "install ok installed"
) -> str:
    lines = [f"Package: {name}"]
    if status:
        lines.append(f"Status: {status}")
    lines += ["Priority: optional", "Section: libs", "Installed-Size: 100"]
    lines += ["Maintainer: Debian Developers <debian@example.org>", "Architecture: amd64"]
    if source:
        lines.append(f"Source: {source}")
    lines.append(f"Version: {version}")
    lines += [f"Description: the {name} package", " A longer description.", " ."]
    return "\n".join(lines) + "\n"


def apk_stanza(name: str, version: str, origin: str) -> str:
    return (
        f"C:Q1abcdefghijklmnopqrstuvwxyz0123=\nP:{name}\nV:{version}\nA:x86_64\nS:1000\n"
        f"I:2000\nT:the {name} package\nU:https://alpinelinux.org\nL:GPL-2.0-only\n"
        f"o:{origin}\nm:Alpine Maintainers\nt:1700000000\nc:0123456789abcdef\n"
        f"F:usr/bin\nR:{name}\n"
    )


def os_release(id_: str, version_id: str, pretty: str, codename: str = "") -> bytes:
    text = f'PRETTY_NAME="{pretty}"\nNAME="{pretty}"\nVERSION_ID="{version_id}"\nID={id_}\n'
    if codename:
        text += f"VERSION_CODENAME={codename}\n"
    return text.encode()


def _rpm_header(tags: Sequence[tuple[int, int, bytes]]) -> bytes:
    """An rpm header blob (as rpmdb stores it) from (tag, type, encoded value) triples."""
    index = b""
    store = b""
    for tag, kind, value in tags:
        if kind == 4:  # INT32 entries are 4-byte aligned
            store += b"\0" * (-len(store) % 4)
        index += struct.pack(">iiii", tag, kind, len(store), 1)
        store += value
    return struct.pack(">ii", len(tags), len(store)) + index + store


def rpm_package(
    name: str, version: str, release: str, *, epoch: int | None = None, source: str
) -> bytes:
    tags = [(1000, 6, name.encode() + b"\0"), (1001, 6, version.encode() + b"\0")]
    tags.append((1002, 6, release.encode() + b"\0"))
    if epoch is not None:
        tags.append((1003, 4, struct.pack(">i", epoch)))
    tags += [(1022, 6, b"x86_64\0"), (1044, 6, source.encode() + b"\0")]
    return _rpm_header(tags)


def rpmdb_sqlite(headers: Sequence[bytes]) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "rpmdb.sqlite"
        connection = sqlite3.connect(path)
        connection.execute(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
        )
        connection.executemany("INSERT INTO Packages (blob) VALUES (?)", [(h,) for h in headers])
        connection.commit()
        connection.close()
        return path.read_bytes()


# -- language packages --------------------------------------------------------------------------


def dist_info_metadata(name: str, version: str) -> bytes:
    return (
        f"MetadataStore-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n"
        f"License: MIT\n\nA long description.\n\nName: not-a-header\n"
    ).encode()


def package_json(name: str, version: str) -> bytes:
    return json.dumps({"name": name, "version": version, "license": "MIT"}).encode()


def _jar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def pom_properties(group: str, artifact: str, version: str) -> tuple[str, bytes]:
    path = f"META-INF/maven/{group}/{artifact}/pom.properties"
    text = f"#Created by Apache Maven\nversion={version}\ngroupId={group}\nartifactId={artifact}\n"
    return path, text.encode()


def jar(*poms: tuple[str, str, str], nested: dict[str, bytes] | None = None) -> bytes:
    entries = {"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n"}
    for group, artifact, version in poms:
        path, data = pom_properties(group, artifact, version)
        entries[path] = data
    entries.update(nested or {})
    return _jar(entries)


_GO_MAGIC = b"\xff Go buildinf:"
_SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
_SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def go_binary(go_version: str, main: str, deps: Sequence[tuple[str, str]]) -> bytes:
    """An ELF-looking executable whose `.go.buildinfo` follows the Go 1.18+ format: magic,
    pointer size, flags (inline strings), padding to 32 bytes, then the varint-prefixed Go
    version and module info (between its sentinels)."""
    modinfo = f"path\t{main}/cmd/app\nmod\t{main}\t(devel)\t\n"
    for path, version in deps:
        modinfo += f"dep\t{path}\t{version}\th1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    modinfo += "build\t-compiler=gc\nbuild\tGOARCH=amd64\nbuild\tGOOS=linux\n"
    mod = _SENTINEL_START + modinfo.encode() + _SENTINEL_END
    header = _GO_MAGIC + bytes([8, 0x2]) + b"\0" * 16
    version = go_version.encode()
    buildinfo = header + _uvarint(len(version)) + version + _uvarint(len(mod)) + mod
    elf = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\x3e\x00"
    text = elf.ljust(8192, b"\x90")
    # A decoy magic off 16-byte alignment, as a string constant in code could be.
    text = text[:1001] + _GO_MAGIC + text[1001 + len(_GO_MAGIC) :]
    return text + buildinfo + b"\0" * 4096


# -- the images ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanImage:
    name: str
    #: (blob bytes, media type) of each layer, bottom first.
    layers: tuple[tuple[bytes, str], ...]

    @property
    def expected(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((IMAGE_FIXTURES / f"{self.name}.json").read_text())
        return document

    def expected_findings(self) -> set[tuple[str, str, str, str]]:
        return {
            (f["name"], f["package_name"], f["package_version"], f["severity"])
            for f in self.expected["findings"]
        }

    def layer_descriptors(self) -> list[Layer]:
        result = []
        for blob, media_type in self.layers:
            tar = _decompress(blob, media_type)
            result.append(Layer(Descriptor.of(media_type, blob), sha256_digest(tar)))
        return result


def _decompress(blob: bytes, media_type: str) -> bytes:
    if media_type == OCI_LAYER_GZIP:
        import gzip

        return gzip.decompress(blob)
    if media_type == OCI_LAYER_ZSTD:
        return zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 30)
    return blob


def _image(name: str, *layers: tuple[Sequence[Entry], str]) -> ScanImage:
    return ScanImage(name, tuple(compress(tar_layer(entries), how) for entries, how in layers))


def debian_image() -> ScanImage:
    """Debian 12: glibc's two binaries fixed in a later +deb12uN, openssh with an epoch, openssl
    around a tilde; a vulnerable urllib3 added in a zstd layer and deleted by a whiteout."""
    status = "\n".join(
        [
            dpkg_stanza("base-files", "12.4+deb12u5"),
            dpkg_stanza("libc6", "2.36-9+deb12u1", "glibc"),
            dpkg_stanza("libc-bin", "2.36-9+deb12u1", "glibc"),
            dpkg_stanza("openssh-client", "1:9.2p1-2+deb12u1", "openssh"),
            dpkg_stanza("libssl3", "3.0.11-1~deb12u2", "openssl"),
            dpkg_stanza("openssl", "3.0.11~rc1-1"),
            dpkg_stanza("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
            dpkg_stanza("libgcrypt20", "1.10.1-3", status="deinstall ok config-files"),
        ]
    )
    base = [
        File(
            "usr/lib/os-release",
            os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)", "bookworm"),
        ),
        Symlink("etc/os-release", "../usr/lib/os-release"),
        File("etc/debian_version", b"12.5\n"),
        File("var/lib/dpkg/status", status.encode()),
        File("usr/bin/true", b"\x7fELF" + b"\0" * 2000, 0o755),
    ]
    site = "usr/lib/python3/dist-packages"
    python = [
        File(f"{site}/urllib3-1.26.5.dist-info/METADATA", dist_info_metadata("urllib3", "1.26.5")),
        File(f"{site}/urllib3-1.26.5.dist-info/RECORD", b""),
        File(f"{site}/urllib3/__init__.py", b""),
    ]
    removal = [Whiteout(f"{site}/urllib3-1.26.5.dist-info"), Whiteout(f"{site}/urllib3")]
    return _image("debian", (base, "gzip"), (python, "zstd"), (removal, "plain"))


def alpine_image() -> ScanImage:
    """Alpine 3.18: busybox's origin fixed in -r1 covers three binary packages; minimist in the
    global node_modules; an app's node_modules replaced wholesale through an opaque directory."""
    installed = "\n".join(
        [
            apk_stanza("busybox", "1.36.1-r0", "busybox"),
            apk_stanza("busybox-binsh", "1.36.1-r0", "busybox"),
            apk_stanza("ssl_client", "1.36.1-r0", "busybox"),
            apk_stanza("musl", "1.2.4-r2", "musl"),
            apk_stanza("alpine-baselayout", "3.4.3-r1", "alpine-baselayout"),
        ]
    )
    base = [
        File("etc/alpine-release", b"3.18.4\n"),
        File("etc/os-release", os_release("alpine", "3.18.4", "Alpine Linux v3.18")),
        File("lib/apk/db/installed", installed.encode()),
    ]
    node = [
        File("usr/lib/node_modules/minimist/package.json", package_json("minimist", "1.2.5")),
        File("app/node_modules/lodash/package.json", package_json("lodash", "4.17.20")),
        File("app/node_modules/lodash-es/package.json", package_json("lodash-es", "4.17.15")),
    ]
    replaced = [
        Opaque("app/node_modules"),
        File("app/node_modules/lodash/package.json", package_json("lodash", "4.17.21")),
    ]
    return _image("alpine", (base, "gzip"), (node, "gzip"), (replaced, "gzip"))


def rocky_image() -> ScanImage:
    """Rocky Linux 9 (rpmdb.sqlite), with a Go binary whose build info names x/net."""
    rpmdb = rpmdb_sqlite(
        [
            rpm_package("bash", "5.1.8", "6.el9_1", source="bash-5.1.8-6.el9_1.src.rpm"),
            rpm_package(
                "openssl-libs", "3.0.7", "24.el9", epoch=1, source="openssl-3.0.7-24.el9.src.rpm"
            ),
        ]
    )
    binary = go_binary(
        "go1.21.4",
        "example.com/app",
        [("golang.org/x/net", "v0.10.0"), ("golang.org/x/text", "v0.9.0")],
    )
    base = [
        File("etc/os-release", os_release("rocky", "9.3", "Rocky Linux 9.3 (Blue Onyx)")),
        File("var/lib/rpm/rpmdb.sqlite", rpmdb),
    ]
    app = [File("usr/local/bin/app", binary, 0o755), File("usr/local/bin/app.sh", binary, 0o644)]
    return _image("rocky", (base, "gzip"), (app, "zstd"))


def languages_image() -> ScanImage:
    """Distroless Debian 12 (dpkg status.d) with Python, npm and Java packages."""
    site = "usr/local/lib/python3.11/site-packages"
    app_jar = jar(
        ("org.apache.logging.log4j", "log4j-core", "2.14.1"),
        nested={
            "BOOT-INF/lib/log4j-api-2.14.1.jar": jar(
                ("org.apache.logging.log4j", "log4j-api", "2.14.1")
            )
        },
    )
    layer = [
        File("etc/os-release", os_release("debian", "12", "Debian GNU/Linux 12 (bookworm)")),
        File(
            "var/lib/dpkg/status.d/libc6", dpkg_stanza("libc6", "2.36-9+deb12u3", "glibc").encode()
        ),
        File("var/lib/dpkg/status.d/libc6.md5sums", b"0123 usr/lib/libc.so.6\n"),
        File(
            f"{site}/requests-2.30.0.dist-info/METADATA", dist_info_metadata("requests", "2.30.0")
        ),
        File(f"{site}/urllib3-2.0.7.dist-info/METADATA", dist_info_metadata("urllib3", "2.0.7")),
        File(
            f"{site}/Jinja2-3.1.2-py3.11.egg-info/PKG-INFO", dist_info_metadata("Jinja2", "3.1.2")
        ),
        File("app/node_modules/lodash/package.json", package_json("lodash", "4.17.20")),
        File("app/node_modules/@types/node/package.json", package_json("@types/node", "20.8.0")),
        File("app/node_modules/lodash/node_modules/x/package.json", b"not json"),
        File("opt/app/app.jar", app_jar),
    ]
    return _image("languages", (layer, "gzip"))


def unsupported_image() -> ScanImage:
    """No OS and no package: nothing a scanner can read."""
    return _image("unsupported", ([File("data/readme.txt", b"just data\n")], "gzip"))


IMAGES: dict[str, Callable[[], ScanImage]] = {
    "debian": debian_image,
    "alpine": alpine_image,
    "rocky": rocky_image,
    "languages": languages_image,
    "unsupported": unsupported_image,
}
