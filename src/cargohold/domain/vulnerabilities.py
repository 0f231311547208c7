"""Matching an inventory against OSV advisories, and what ECR calls a finding.

An OSV record lists `affected` packages by ecosystem and name; a version is affected when it is
listed in `versions`, or falls inside a range: the events (`introduced`, `fixed`,
`last_affected`, `limit`) are sorted in the ecosystem's version order and walked, as the OSV
schema specifies. Distributions publish advisories against *source* packages in a versioned
ecosystem (`Debian:12`, `Alpine:v3.18`), so a binary package is looked up by its source.

A finding's severity is the distribution's own rating when it gives one (Debian's urgency),
else the highest-version CVSS vector's base score (v4, then v3, then v2) in ECR's bands, else
the advisory database's rating (GitHub's), else UNDEFINED.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.domain.inventory import (
    APK,
    DEB,
    GOLANG,
    MAVEN,
    NPM,
    PYPI,
    RPM,
    Inventory,
    OperatingSystem,
    Package,
)
from cargohold.domain.versions import VersionError, ecosystem_base, has_order, version_key

Record = Mapping[str, Any]

#: ECR's severities, most severe first.
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")

_RPM_DISTRIBUTIONS = {"rocky": "Rocky Linux", "almalinux": "AlmaLinux", "rhel": "Red Hat"}


@dataclass(frozen=True, slots=True)
class QueryKey:
    """How the vulnerability database names a package: ecosystem, name and version."""

    ecosystem: str
    name: str
    version: str


def normalize_name(ecosystem: str, name: str) -> str:
    """Names as the database indexes them: PyPI names compare as PEP 503 normalises them."""
    if ecosystem_base(ecosystem) == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def normalize_ecosystem(ecosystem: str) -> str:
    """`Ubuntu:22.04:LTS` and `Ubuntu:22.04` are the same release to an image."""
    parts = ecosystem.split(":")
    if parts[0] == "Ubuntu" and len(parts) > 2 and parts[-1] == "LTS":
        return ":".join(parts[:-1])
    return ecosystem


def os_ecosystem(os: OperatingSystem | None) -> str | None:
    """The ecosystem a distribution's advisories use for this release, if one is known."""
    if os is None or not os.version_id:
        return None
    if os.id == "debian":
        return f"Debian:{os.major}"
    if os.id == "ubuntu":
        return f"Ubuntu:{os.version_id}"
    if os.id == "alpine":
        return f"Alpine:v{os.minor}"
    if os.id in _RPM_DISTRIBUTIONS:
        return f"{_RPM_DISTRIBUTIONS[os.id]}:{os.major}"
    return None


def query_key(package: Package, os: OperatingSystem | None) -> QueryKey | None:
    """How to look `package` up, or None when no ecosystem covers it."""
    if package.kind in (DEB, APK, RPM):
        ecosystem = os_ecosystem(os)
        if ecosystem is None:
            return None
        expected = {DEB: ("Debian", "Ubuntu"), APK: ("Alpine",)}.get(package.kind)
        if expected is not None and ecosystem_base(ecosystem) not in expected:
            return None
        return QueryKey(
            ecosystem,
            package.source_name or package.name,
            package.source_version or package.version,
        )
    if package.kind == PYPI:
        return QueryKey("PyPI", normalize_name("PyPI", package.name), package.version)
    if package.kind == NPM:
        return QueryKey("npm", package.name, package.version)
    if package.kind == GOLANG:
        return QueryKey("Go", package.name, package.version.removeprefix("v"))
    if package.kind == MAVEN:
        return QueryKey("Maven", package.name, package.version)
    return None


# -- ranges ---------------------------------------------------------------------------------


def _in_range(ecosystem: str, version: Any, range_: Mapping[str, Any]) -> bool:
    semver = range_.get("type") == "SEMVER"
    events: list[tuple[Any, str]] = []
    limits: list[tuple[Any, str]] = []
    for event in range_.get("events", []):
        for kind in ("introduced", "fixed", "last_affected", "limit"):
            value = event.get(kind)
            if not isinstance(value, str):
                continue
            if kind == "introduced" and value == "0":
                events.append((None, kind))
                break
            key = version_key(ecosystem, value, semver=semver)
            (limits if kind == "limit" else events).append((key, kind))
            break
    # "0" sorts first; otherwise by version, introduced before fixed at an equal version.
    order = {"introduced": 0, "fixed": 1, "last_affected": 2}
    events.sort(key=lambda e: (e[0] is not None, e[0] if e[0] is not None else 0, order[e[1]]))
    affected = False
    for key, kind in events:
        if kind == "introduced":
            if key is None or version >= key:
                affected = True
        elif kind == "fixed":
            if version >= key:
                affected = False
        elif kind == "last_affected" and version > key:
            affected = False
    if affected and any(version >= key for key, _ in limits):
        return False
    return affected


def affects(affected: Mapping[str, Any], key: QueryKey) -> bool:
    """Whether one `affected` entry covers `key`'s version."""
    versions = affected.get("versions") or []
    if key.version in versions:
        return True
    ranges = [r for r in affected.get("ranges") or [] if r.get("type") in ("ECOSYSTEM", "SEMVER")]
    if not affected.get("ranges") and not versions:
        # An entry with neither ranges nor versions affects every version (OSV schema); one
        # with only GIT ranges says nothing about package versions.
        return True
    if not has_order(key.ecosystem) and not any(r.get("type") == "SEMVER" for r in ranges):
        return False
    for range_ in ranges:
        semver = range_.get("type") == "SEMVER"
        try:
            version = version_key(key.ecosystem, key.version, semver=semver)
            if _in_range(key.ecosystem, version, range_):
                return True
        except (VersionError, TypeError):
            continue
    if versions and ecosystem_base(key.ecosystem) == "PyPI":
        try:
            wanted = version_key("PyPI", key.version)
            return any(_same(wanted, v) for v in versions)
        except VersionError:
            return False
    return False


def _same(wanted: Any, listed: str) -> bool:
    try:
        return bool(wanted == version_key("PyPI", listed))
    except VersionError:
        return False


def affected_entries(record: Record, key: QueryKey) -> list[Mapping[str, Any]]:
    """The record's `affected` entries for `key`'s package that cover its version."""
    found = []
    for entry in record.get("affected") or []:
        package = entry.get("package") or {}
        ecosystem = normalize_ecosystem(str(package.get("ecosystem", "")))
        if ecosystem != key.ecosystem:
            continue
        if normalize_name(ecosystem, str(package.get("name", ""))) != key.name:
            continue
        if affects(entry, key):
            found.append(entry)
    return found


# -- severity -------------------------------------------------------------------------------

_URGENCY = {
    "unimportant": "INFORMATIONAL",
    "negligible": "INFORMATIONAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "moderate": "MEDIUM",
    "high": "HIGH",
    "important": "HIGH",
    "critical": "CRITICAL",
}


@dataclass(frozen=True, slots=True)
class Cvss:
    version: int
    vector: str
    score: float


def _cvss_score(kind: str, vector: str) -> Cvss | None:
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    try:
        if kind == "CVSS_V4":
            return Cvss(4, vector, float(CVSS4(vector).base_score))
        if kind == "CVSS_V3":
            return Cvss(3, vector, float(CVSS3(vector).scores()[0]))
        if kind == "CVSS_V2":
            bare = vector.removeprefix("CVSS:2.0/")
            return Cvss(2, bare, float(CVSS2(bare).scores()[0]))
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def cvss_scores(record: Record, entries: Iterable[Mapping[str, Any]] = ()) -> dict[int, Cvss]:
    """The CVSS vectors of a record (and of its affected entries), by CVSS major version."""
    found: dict[int, Cvss] = {}
    sources = [record.get("severity") or []] + [e.get("severity") or [] for e in entries]
    for severities in sources:
        for item in severities:
            kind, vector = item.get("type"), item.get("score")
            if not isinstance(kind, str) or not isinstance(vector, str):
                continue
            scored = _cvss_score(kind, vector)
            if scored is not None and scored.version not in found:
                found[scored.version] = scored
    return found


def cvss_band(cvss: Cvss) -> str:
    """ECR's level for a base score: CVSS v2 has no critical band."""
    score = cvss.score
    if score >= 9.0 and cvss.version >= 3:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    if score > 0.0:
        return "LOW"
    return "INFORMATIONAL"


def _rating(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _URGENCY.get(value.strip().lower().rstrip("*"))


def severity(record: Record, entries: Sequence[Mapping[str, Any]]) -> str:
    for entry in entries:
        specific = entry.get("ecosystem_specific") or {}
        rated = _rating(specific.get("urgency")) or _rating(specific.get("severity"))
        if rated:
            return rated
    scores = cvss_scores(record, entries)
    if scores:
        return cvss_band(scores[max(scores)])
    database = record.get("database_specific") or {}
    return _rating(database.get("severity")) or "UNDEFINED"


# -- findings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability in one package, as ECR's basic scan reports it."""

    name: str
    severity: str
    package_name: str
    package_version: str
    description: str
    uri: str
    advisory_id: str
    cvss: tuple[Cvss, ...] = ()
    fixed_versions: tuple[str, ...] = ()

    @property
    def attributes(self) -> list[tuple[str, str]]:
        attributes = [
            ("package_name", self.package_name),
            ("package_version", self.package_version),
        ]
        for score in self.cvss:
            attributes.append((f"CVSS{score.version}_VECTOR", score.vector))
            attributes.append((f"CVSS{score.version}_SCORE", f"{score.score:g}"))
        if self.advisory_id != self.name:
            attributes.append(("advisory_id", self.advisory_id))
        if self.fixed_versions:
            attributes.append(("fixed_version", ", ".join(self.fixed_versions)))
        return attributes


def finding_name(record: Record) -> str:
    """A CVE id when the record stands for exactly one CVE, else the record's own id."""
    identifier = str(record.get("id", ""))
    if identifier.startswith("CVE-"):
        return identifier
    cves = {
        a
        for a in list(record.get("aliases") or []) + list(record.get("upstream") or [])
        if isinstance(a, str) and a.startswith("CVE-")
    }
    return cves.pop() if len(cves) == 1 else identifier


def _uri(record: Record) -> str:
    references = [r for r in record.get("references") or [] if isinstance(r.get("url"), str)]
    for reference in references:
        if reference.get("type") == "ADVISORY":
            return str(reference["url"])
    return f"https://osv.dev/vulnerability/{record.get('id', '')}"


def _fixed(entries: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    fixed = []
    for entry in entries:
        for range_ in entry.get("ranges") or []:
            for event in range_.get("events") or []:
                if isinstance(event.get("fixed"), str):
                    fixed.append(event["fixed"])
    return tuple(dict.fromkeys(fixed))


def finding(record: Record, package: Package, entries: Sequence[Mapping[str, Any]]) -> Finding:
    scores = cvss_scores(record, entries)
    description = str(record.get("details") or record.get("summary") or "")
    return Finding(
        name=finding_name(record),
        severity=severity(record, entries),
        package_name=package.name,
        package_version=package.version,
        description=description,
        uri=_uri(record),
        advisory_id=str(record.get("id", "")),
        cvss=tuple(scores[v] for v in sorted(scores, reverse=True)),
        fixed_versions=_fixed(entries),
    )


def _rank(item: Finding) -> tuple[int, str, str, str]:
    return (SEVERITIES.index(item.severity), item.name, item.package_name, item.package_version)


Lookup = Callable[[QueryKey], Iterable[Record]]


def match(inventory: Inventory, lookup: Lookup) -> list[Finding]:
    """Every finding of the inventory, most severe first; one per vulnerability name and
    package name and version (the same package found twice is reported once)."""
    found: dict[tuple[str, str, str], Finding] = {}
    for package in inventory.packages:
        key = query_key(package, inventory.os)
        if key is None:
            continue
        for record in lookup(key):
            if record.get("withdrawn"):
                continue
            entries = affected_entries(record, key)
            if not entries:
                continue
            candidate = finding(record, package, entries)
            ident = (candidate.name, candidate.package_name, candidate.package_version)
            current = found.get(ident)
            if current is None or _rank(candidate) < _rank(current):
                found[ident] = candidate
    return sorted(found.values(), key=_rank)


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in findings:
        counts[item.severity] = counts.get(item.severity, 0) + 1
    return counts
