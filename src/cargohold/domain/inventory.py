"""What an image holds: its operating system and its packages, as a scan reads them from layers.

An inventory is stored with its scan (as JSON) so that a changed vulnerability database can be
matched against it again without reading any layer. Package kinds are Package URL types (`deb`,
`apk`, `rpm`, `pypi`, `npm`, `golang`, `maven`), so an SBOM names them without translation.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

DEB = "deb"
APK = "apk"
RPM = "rpm"
PYPI = "pypi"
NPM = "npm"
GOLANG = "golang"
MAVEN = "maven"

KINDS = (DEB, APK, RPM, PYPI, NPM, GOLANG, MAVEN)


@dataclass(frozen=True, slots=True, order=True)
class Package:
    kind: str
    name: str
    version: str
    #: Where the package was found in the image's filesystem (no leading slash).
    location: str = ""
    #: The source package a distribution built this binary package from (dpkg `Source:`,
    #: apk origin, rpm source rpm); advisories of distributions name source packages.
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    #: os-release `ID` (debian, ubuntu, alpine, rocky, almalinux …).
    id: str
    #: os-release `VERSION_ID` (`12`, `3.19.1`, `9.3`); empty when the release has none.
    version_id: str = ""
    pretty_name: str = ""
    version_codename: str = ""

    @property
    def major(self) -> str:
        return self.version_id.split(".", 1)[0]

    @property
    def minor(self) -> str:
        """`major.minor` (`3.19` of `3.19.1`)."""
        return ".".join(self.version_id.split(".")[:2])


@dataclass(frozen=True, slots=True)
class Inventory:
    os: OperatingSystem | None = None
    packages: tuple[Package, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return self.os is None and not self.packages

    def to_json(self) -> dict[str, Any]:
        return {
            "os": asdict(self.os) if self.os is not None else None,
            "packages": [
                {k: v for k, v in asdict(p).items() if v not in (None, "")} for p in self.packages
            ],
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Inventory:
        os_doc = document.get("os")
        return cls(
            OperatingSystem(**os_doc) if isinstance(os_doc, dict) else None,
            tuple(Package(**p) for p in document.get("packages", [])),
        )


_PURL_NAMESPACE = {DEB: "debian", APK: "alpine", RPM: ""}


def purl(package: Package, os: OperatingSystem | None = None) -> str:
    """The package's Package URL (`pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12`)."""
    kind = package.kind
    name = package.name
    namespace = ""
    if kind in (DEB, APK, RPM):
        namespace = os.id if os is not None and os.id else _PURL_NAMESPACE[kind]
    elif kind == MAVEN and ":" in name:
        namespace, name = name.split(":", 1)
    elif kind == NPM and name.startswith("@") and "/" in name:
        namespace, name = name.split("/", 1)
    elif kind == GOLANG and "/" in name:
        namespace, name = name.rsplit("/", 1)
    elif kind == PYPI:
        name = re.sub(r"[-_.]+", "-", name).lower()
    path = "/".join(quote(part, safe="") for part in namespace.split("/") if part)
    prefix = f"pkg:{kind}/{path + '/' if path else ''}"
    text = f"{prefix}{quote(name, safe='')}@{quote(package.version, safe='')}"
    qualifiers = []
    if package.arch:
        qualifiers.append(f"arch={quote(package.arch, safe='')}")
    if kind in (DEB, APK, RPM) and os is not None and os.version_id:
        qualifiers.append(f"distro={quote(os.id + '-' + os.version_id, safe='')}")
    if qualifiers:
        text += "?" + "&".join(qualifiers)
    return text
