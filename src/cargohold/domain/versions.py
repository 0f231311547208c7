"""Each ecosystem's version order, from the libraries that define it.

dpkg order (epochs, `~` before anything) for Debian and Ubuntu by python-debian; apk order for
Alpine and Maven's ComparableVersion by univers; PEP 440 by packaging; semantic versioning for
npm and Go by semver (Go toolchain versions such as `1.22rc1` are read as `1.22.0-rc.1`, as the
Go vulnerability database writes them); rpm order (epoch:version-release) by univers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from debian.debian_support import Version as DebianVersion
from packaging.version import InvalidVersion as InvalidPep440
from packaging.version import Version as Pep440Version
from semver import Version as SemVer


class VersionError(ValueError):
    """A version its ecosystem's order cannot place."""


def ecosystem_base(ecosystem: str) -> str:
    """`Debian:12` → `Debian`; `Alpine:v3.19` → `Alpine`."""
    return ecosystem.split(":", 1)[0]


def _debian(version: str) -> Any:
    try:
        return DebianVersion(version)
    except ValueError as exc:
        raise VersionError(str(exc)) from None


def _pep440(version: str) -> Any:
    try:
        return Pep440Version(version)
    except InvalidPep440 as exc:
        raise VersionError(str(exc)) from None


_GO_TOOLCHAIN = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?")


def _semver(version: str) -> Any:
    text = version.strip().removeprefix("v").removeprefix("=")
    go = _GO_TOOLCHAIN.fullmatch(text)
    if go and (go[3] is None or go[4]):
        major, minor, patch, kind, number = go.groups()
        text = f"{major}.{minor}.{patch or 0}" + (f"-{kind}.{number}" if kind else "")
    try:
        return SemVer.parse(text)
    except (ValueError, TypeError) as exc:
        raise VersionError(str(exc)) from None


@functools.cache
def _univers(name: str) -> Any:
    # univers takes a third of a second to import; only ecosystems that need it pay.
    from univers import versions

    return getattr(versions, name)


def _univers_version(name: str) -> Callable[[str], Any]:
    def parse(version: str) -> Any:
        try:
            return _univers(name)(version)
        except Exception as exc:  # univers raises a mix of ValueError and its own errors
            raise VersionError(str(exc)) from None

    return parse


_ORDERS: dict[str, Callable[[str], Any]] = {
    "Debian": _debian,
    "Ubuntu": _debian,
    "Alpine": _univers_version("AlpineLinuxVersion"),
    "PyPI": _pep440,
    "npm": _semver,
    "Go": _semver,
    "Maven": _univers_version("MavenVersion"),
    "Rocky Linux": _univers_version("RpmVersion"),
    "AlmaLinux": _univers_version("RpmVersion"),
    "Red Hat": _univers_version("RpmVersion"),
}


def has_order(ecosystem: str) -> bool:
    return ecosystem_base(ecosystem) in _ORDERS


def version_key(ecosystem: str, version: str, *, semver: bool = False) -> Any:
    """A value that sorts as `version` does in `ecosystem` (or in SemVer, for SEMVER ranges)."""
    parse = _semver if semver else _ORDERS.get(ecosystem_base(ecosystem))
    if parse is None:
        raise VersionError(f"no version order known for ecosystem {ecosystem!r}")
    return parse(version)
