"""The operating system and its package managers' databases: os-release, dpkg, apk and rpm.

Each analyzer reads one kind of file as it streams out of a layer. Distribution advisories name
*source* packages, so each binary package keeps the source package (and version) it was built
from: dpkg's `Source:` field, apk's origin, rpm's source rpm.
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import struct
from collections.abc import Iterator
from typing import IO

from cargohold.domain.inventory import APK, DEB, RPM, OperatingSystem, Package
from cargohold.scanning.layers import Entry, FileResult

#: Larger files at these paths are not what they claim to be; they are skipped, not read.
MAX_DATABASE = 512 * 1024 * 1024
MAX_TEXT = 64 * 1024 * 1024

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


def _text(stream: IO[bytes], limit: int = MAX_TEXT) -> str:
    return stream.read(limit).decode("utf-8", errors="replace")


def _paragraphs(text: str) -> Iterator[list[str]]:
    """Blank-line separated stanzas (dpkg's control format, apk's installed database)."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip():
            lines.append(line)
        elif lines:
            yield lines
            lines = []
    if lines:
        yield lines


# -- operating system -----------------------------------------------------------------------


def parse_os_release(text: str) -> OperatingSystem | None:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("\"'")]
        values[key.strip()] = parts[0] if parts else ""
    if not values.get("ID"):
        return None
    return OperatingSystem(
        id=values["ID"].lower(),
        version_id=values.get("VERSION_ID", ""),
        pretty_name=values.get("PRETTY_NAME", ""),
        version_codename=values.get("VERSION_CODENAME", ""),
    )


class OsReleaseAnalyzer:
    """os-release first (`/etc` over `/usr/lib`), then `debian_version` and `alpine-release`."""

    def wants(self, entry: Entry) -> bool:
        return entry.path in (*OS_RELEASE, "etc/debian_version", "etc/alpine-release")

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        text = _text(stream, 64 * 1024)
        if entry.path in OS_RELEASE:
            os = parse_os_release(text)
            rank = 4 if entry.path == "etc/os-release" else 3
            return FileResult(os=os, os_rank=rank) if os is not None else None
        version = text.strip().split()[0] if text.strip() else ""
        if entry.path == "etc/alpine-release" and version:
            return FileResult(os=OperatingSystem("alpine", version), os_rank=2)
        if entry.path == "etc/debian_version" and version:
            # `12.4` on a release; `trixie/sid` on testing, which has no release number yet.
            release = version if re.fullmatch(r"\d+(\.\d+)*", version) else ""
            return FileResult(os=OperatingSystem("debian", release.split(".")[0]), os_rank=1)
        return None


# -- dpkg -----------------------------------------------------------------------------------

#: dpkg states in which a package's files are (at least partly) on disk.
_DPKG_PRESENT = {
    "installed",
    "half-configured",
    "unpacked",
    "half-installed",
    "triggers-awaited",
    "triggers-pending",
}
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?\s*$")


def _fields(lines: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        if line[0] in " \t" or ":" not in line:
            continue  # a continuation line (descriptions, conffiles)
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    return fields


def parse_dpkg_status(text: str, location: str) -> list[Package]:
    packages = []
    for lines in _paragraphs(text):
        fields = _fields(lines)
        name, version = fields.get("package"), fields.get("version")
        if not name or not version:
            continue
        status = fields.get("status")
        if status is not None and status.split()[-1:] and status.split()[-1] not in _DPKG_PRESENT:
            continue
        source_name, source_version = name, version
        match = _SOURCE.match(fields.get("source", ""))
        if match:
            source_name = match["name"]
            source_version = match["version"] or version
        packages.append(
            Package(
                DEB,
                name,
                version,
                location=location,
                source_name=source_name,
                source_version=source_version,
                arch=fields.get("architecture") or None,
            )
        )
    return packages


class DpkgAnalyzer:
    """`var/lib/dpkg/status`, and distroless images' one-stanza files in `status.d/`."""

    def wants(self, entry: Entry) -> bool:
        if entry.path == "var/lib/dpkg/status":
            return True
        directory, _, name = entry.path.rpartition("/")
        return directory == "var/lib/dpkg/status.d" and not name.endswith(".md5sums")

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        packages = parse_dpkg_status(_text(stream), entry.path)
        return FileResult(tuple(packages)) if packages else None


# -- apk ------------------------------------------------------------------------------------


def parse_apk_installed(text: str, location: str) -> list[Package]:
    packages = []
    for lines in _paragraphs(text):
        fields: dict[str, str] = {}
        for line in lines:
            if len(line) > 1 and line[1] == ":":
                fields.setdefault(line[0], line[2:])
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        packages.append(
            Package(
                APK,
                name,
                version,
                location=location,
                source_name=fields.get("o") or name,
                source_version=version,
                arch=fields.get("A") or None,
            )
        )
    return packages


class ApkAnalyzer:
    def wants(self, entry: Entry) -> bool:
        return entry.path == "lib/apk/db/installed"

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        packages = parse_apk_installed(_text(stream), entry.path)
        return FileResult(tuple(packages)) if packages else None


# -- rpm ------------------------------------------------------------------------------------

RPMTAG_NAME = 1000
RPMTAG_VERSION = 1001
RPMTAG_RELEASE = 1002
RPMTAG_EPOCH = 1003
RPMTAG_ARCH = 1022
RPMTAG_SOURCERPM = 1044
_RPM_INT32 = 4
_RPM_STRING = 6
_RPM_I18NSTRING = 9
_WANTED_TAGS = {
    RPMTAG_NAME,
    RPMTAG_VERSION,
    RPMTAG_RELEASE,
    RPMTAG_EPOCH,
    RPMTAG_ARCH,
    RPMTAG_SOURCERPM,
}


class RpmHeaderError(ValueError):
    pass


def parse_rpm_header(blob: bytes) -> dict[int, str | int]:
    """The tags we need from an rpm header blob as rpmdb stores it (index count, data length,
    16-byte index entries, then the data store), per the rpm file format's header structure."""
    if len(blob) < 8:
        raise RpmHeaderError("header blob too short")
    count, data_length = struct.unpack_from(">ii", blob, 0)
    store = 8 + 16 * count
    if count < 0 or data_length < 0 or store + data_length > len(blob):
        raise RpmHeaderError("header blob lengths are inconsistent")
    data = blob[store : store + data_length]
    tags: dict[int, str | int] = {}
    for i in range(count):
        tag, kind, offset, items = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if tag not in _WANTED_TAGS or not 0 <= offset < len(data):
            continue
        if kind == _RPM_INT32 and items >= 1 and offset + 4 <= len(data):
            tags[tag] = struct.unpack_from(">i", data, offset)[0]
        elif kind in (_RPM_STRING, _RPM_I18NSTRING):
            end = data.find(b"\0", offset)
            tags[tag] = data[offset : end if end >= 0 else len(data)].decode("utf-8", "replace")
    return tags


def rpm_source_name(source_rpm: str) -> str:
    """`openssl-3.0.7-24.el9.src.rpm` → `openssl`."""
    stem = source_rpm.removesuffix(".rpm").rsplit(".", 1)[0]
    parts = stem.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else stem


def parse_rpmdb_sqlite(data: bytes, location: str) -> list[Package]:
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(data)
        rows = connection.execute("SELECT blob FROM Packages").fetchall()
    except sqlite3.DatabaseError:
        return []
    finally:
        connection.close()
    packages = []
    for (blob,) in rows:
        try:
            tags = parse_rpm_header(bytes(blob))
        except (RpmHeaderError, struct.error):
            continue
        name, version, release = (
            tags.get(t) for t in (RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE)
        )
        if not isinstance(name, str) or not isinstance(version, str) or name == "gpg-pubkey":
            continue
        full = f"{version}-{release}" if isinstance(release, str) and release else version
        epoch = tags.get(RPMTAG_EPOCH)
        if isinstance(epoch, int) and epoch > 0:
            full = f"{epoch}:{full}"
        source = tags.get(RPMTAG_SOURCERPM)
        arch = tags.get(RPMTAG_ARCH)
        packages.append(
            Package(
                RPM,
                name,
                full,
                location=location,
                source_name=rpm_source_name(source) if isinstance(source, str) else name,
                source_version=full,
                arch=arch if isinstance(arch, str) else None,
            )
        )
    return packages


class RpmAnalyzer:
    """rpm's SQLite database (RHEL 9, Fedora 33+, current openSUSE)."""

    def wants(self, entry: Entry) -> bool:
        return entry.path in ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        if entry.size > MAX_DATABASE:
            return None
        packages = parse_rpmdb_sqlite(stream.read(), entry.path)
        return FileResult(tuple(packages)) if packages else None
