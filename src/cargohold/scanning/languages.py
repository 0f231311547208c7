"""Language packages: Python distributions, npm packages and Java archives.

Each is recognised by the file its package manager leaves behind: a `*.dist-info/METADATA` or
`*.egg-info` (PKG-INFO) for Python, `node_modules/…/package.json` for npm, and the
`META-INF/maven/…/pom.properties` Maven writes into every jar it builds (nested jars of a
fat jar included).
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from email.parser import BytesHeaderParser
from typing import IO

from cargohold.domain import jsondoc
from cargohold.domain.inventory import MAVEN, NPM, PYPI, Package
from cargohold.scanning.layers import Entry, FileResult, Unreadable

MAX_METADATA = 4 * 1024 * 1024
#: Archives up to this size are read in memory; larger ones spill to a temporary file.
IN_MEMORY_ARCHIVE = 64 * 1024 * 1024
MAX_ARCHIVE = 2 * 1024 * 1024 * 1024
#: How deep jars inside jars are opened (a Spring Boot jar's BOOT-INF/lib/*.jar is depth 1).
MAX_NESTING = 2

_DIST_INFO = re.compile(r"(?:^|/)[^/]+\.dist-info/METADATA$")
_EGG_INFO = re.compile(r"(?:^|/)[^/]+\.egg-info(?:/PKG-INFO)?$")
_NPM = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@][^/]*/package\.json$")
_ARCHIVE = (".jar", ".war", ".ear", ".jpi", ".hpi")
_POM_PROPERTIES = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")


class PythonAnalyzer:
    def wants(self, entry: Entry) -> bool:
        return bool(_DIST_INFO.search(entry.path) or _EGG_INFO.search(entry.path))

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        # Headers end at the first blank line; the description after it can be long.
        head = bytearray()
        for line in stream:
            if not line.strip() or len(head) > MAX_METADATA:
                break
            head += line
        headers = BytesHeaderParser().parsebytes(bytes(head))
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            return None
        return FileResult((Package(PYPI, str(name).strip(), str(version).strip(), entry.path),))


class NpmAnalyzer:
    def wants(self, entry: Entry) -> bool:
        return bool(_NPM.search(entry.path))

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        try:
            document = jsondoc.loads(stream.read(MAX_METADATA))
        except jsondoc.JsonTooDeep as exc:
            raise Unreadable(str(exc)) from None
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(document, dict):
            return None
        name, version = document.get("name"), document.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            return None
        return FileResult((Package(NPM, name, version, entry.path),))


def _properties(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        values[key.strip()] = value.strip()
    return values


def read_archive(archive: zipfile.ZipFile, location: str, depth: int = 0) -> list[Package]:
    packages = []
    for info in archive.infolist():
        if _POM_PROPERTIES.match(info.filename):
            values = _properties(archive.read(info).decode("utf-8", errors="replace"))
            group, artifact, version = (values.get(k) for k in ("groupId", "artifactId", "version"))
            if group and artifact and version:
                packages.append(Package(MAVEN, f"{group}:{artifact}", version, location))
        elif info.filename.lower().endswith(_ARCHIVE) and depth < MAX_NESTING:
            if info.file_size > IN_MEMORY_ARCHIVE:
                continue
            try:
                with zipfile.ZipFile(io.BytesIO(archive.read(info))) as inner:
                    packages.extend(read_archive(inner, f"{location}!/{info.filename}", depth + 1))
            except (zipfile.BadZipFile, OSError, EOFError):
                continue
    return packages


class JavaAnalyzer:
    def wants(self, entry: Entry) -> bool:
        return entry.path.lower().endswith(_ARCHIVE) and 0 < entry.size <= MAX_ARCHIVE

    def analyze(self, entry: Entry, stream: IO[bytes]) -> FileResult | None:
        # A zip is read from its end (the central directory): it needs random access.
        with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_ARCHIVE) as spool:
            while chunk := stream.read(1 << 20):
                spool.write(chunk)
            spool.seek(0)
            try:
                with zipfile.ZipFile(spool) as archive:
                    packages = read_archive(archive, entry.path)
            except (zipfile.BadZipFile, OSError, EOFError):
                return None
        return FileResult(tuple(packages)) if packages else None
