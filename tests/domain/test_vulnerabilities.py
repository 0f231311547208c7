"""Version order per ecosystem, OSV range evaluation, severity and finding names: pure rules."""

from __future__ import annotations

from typing import Any

import pytest

from cargohold.domain.inventory import Inventory, OperatingSystem, Package
from cargohold.domain.versions import VersionError, version_key
from cargohold.domain.vulnerabilities import (
    QueryKey,
    affects,
    cvss_band,
    cvss_scores,
    finding_name,
    match,
    os_ecosystem,
    query_key,
    severity,
)


@pytest.mark.parametrize(
    ("ecosystem", "lower", "higher"),
    [
        ("Debian:12", "3.0.11~rc1-1", "3.0.11-1~deb12u2"),
        ("Debian:12", "3.0.11-1~deb12u2", "3.0.11-1"),
        ("Debian:12", "2.36-9+deb12u1", "2.36-9+deb12u10"),
        ("Debian:12", "9.9-1", "1:1.0-1"),  # an epoch outranks everything after it
        ("Debian:12", "1.0~~", "1.0~"),  # each ~ sorts before the end of the string
        ("Debian:12", "1.0", "v1.0"),  # as dpkg: a leading letter is kept, not stripped
        ("Alpine:v3.18", "1.36.1-r2", "1.36.1-r15"),
        ("Alpine:v3.18", "1.2.3_rc1-r0", "1.2.3-r0"),
        ("Alpine:v3.18", "1.0_alpha1-r0", "1.0_beta1-r0"),
        ("PyPI", "2.9.0", "2.30.0"),
        ("PyPI", "3.1.0rc1", "3.1.0"),
        ("PyPI", "1.0rc2", "1.0rc10"),
        ("PyPI", "2.0", "1!1.0"),
        ("npm", "4.17.9", "4.17.21"),
        ("npm", "1.0.0-beta.2", "1.0.0"),
        ("npm", "1.0.0-rc.2", "1.0.0-rc.10"),
        ("Go", "v0.9.0", "0.17.0"),
        ("Go", "0.0.0-20220722155237-a158d28d115b", "0.1.0"),
        ("Go", "1.22rc1", "1.22.0"),
        ("Go", "1.22rc2", "1.22rc10"),  # toolchain release candidates by number, not text
        ("Maven", "2.0-beta9", "2.0"),
        ("Maven", "2.12.1", "2.14.1"),
        ("Maven", "1.0-SNAPSHOT", "1.0"),
        ("Rocky Linux:9", "1:3.0.7-24.el9", "1:3.0.7-25.el9"),
        ("Rocky Linux:9", "9.9-1.el9", "1:1.0-1.el9"),
        ("Rocky Linux:9", "1.0~rc1-1.el9", "1.0-1.el9"),
    ],
)
def test_version_order(ecosystem: str, lower: str, higher: str) -> None:
    assert version_key(ecosystem, lower) < version_key(ecosystem, higher)


@pytest.mark.parametrize(
    ("ecosystem", "one", "other"),
    [
        ("npm", "1.0.0+build.1", "1.0.0"),  # build metadata does not take part in the order
        ("npm", "1.0.0+build.1", "1.0.0+build.2"),
        ("Go", "1.21", "1.21.0"),
        ("PyPI", "1.0", "1.0.0"),
        ("PyPI", "1.0rc1", "1.0c1"),
        ("Debian:12", "0:1.0", "1.0"),
    ],
)
def test_version_equality(ecosystem: str, one: str, other: str) -> None:
    assert version_key(ecosystem, one) == version_key(ecosystem, other)


def test_unknown_versions_and_ecosystems_are_errors() -> None:
    with pytest.raises(VersionError):
        version_key("PyPI", "not a version at all!")
    with pytest.raises(VersionError):
        version_key("Hackage", "1.0")


def entry(
    *events: dict[str, str], versions: list[str] | None = None, kind: str = "ECOSYSTEM"
) -> dict[str, Any]:
    affected: dict[str, Any] = {"ranges": [{"type": kind, "events": list(events)}]}
    if versions is not None:
        affected["versions"] = versions
    return affected


def key(version: str, ecosystem: str = "PyPI") -> QueryKey:
    return QueryKey(ecosystem, "pkg", version)


def test_ranges_with_fixed_last_affected_and_limit() -> None:
    fixed = entry({"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.1"})
    assert [affects(fixed, key(v)) for v in ("0.9", "1.0", "1.4", "1.5", "2.0.5", "2.1")] == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    last = entry({"introduced": "0"}, {"last_affected": "1.2"})
    assert affects(last, key("1.2")) and not affects(last, key("1.2.1"))
    limited = entry({"introduced": "0"}, {"limit": "3.0"})
    assert affects(limited, key("2.9")) and not affects(limited, key("3.0"))


def test_versions_list_and_semver_ranges() -> None:
    listed = {"versions": ["1.0.0", "1.0.1"], "ranges": []}
    assert affects(listed, key("1.0.1")) and not affects(listed, key("1.0.2"))
    semver = entry({"introduced": "0"}, {"fixed": "1.2.3"}, kind="SEMVER")
    assert affects(semver, key("1.2.2", "npm"))
    git_only = {"ranges": [{"type": "GIT", "events": [{"introduced": "abc"}]}]}
    assert not affects(git_only, key("1.0"))
    assert affects({}, key("1.0"))  # neither ranges nor versions: every version


def test_severity_prefers_the_distribution_then_cvss_then_the_database() -> None:
    debian = [{"ecosystem_specific": {"urgency": "low"}}]
    record = {
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    }
    assert severity(record, debian) == "LOW"
    assert severity(record, [{}]) == "CRITICAL"
    assert severity({"database_specific": {"severity": "MODERATE"}}, [{}]) == "MEDIUM"
    assert severity({}, [{"ecosystem_specific": {"urgency": "not yet assigned"}}]) == "UNDEFINED"
    assert severity({}, [{"ecosystem_specific": {"urgency": "unimportant"}}]) == "INFORMATIONAL"


def test_cvss_versions_and_bands() -> None:
    record = {
        "severity": [
            {"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:C/I:C/A:C"},
            {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"},
        ]
    }
    scores = cvss_scores(record)
    assert scores[2].score == 10.0 and cvss_band(scores[2]) == "HIGH"  # v2 has no critical
    assert scores[3].score == 6.1 and cvss_band(scores[3]) == "MEDIUM"
    assert severity(record, [{}]) == "MEDIUM"  # the newest CVSS version decides
    v4 = {
        "severity": [
            {
                "type": "CVSS_V4",
                "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            }
        ]
    }
    assert severity(v4, [{}]) == "CRITICAL"
    assert cvss_scores({"severity": [{"type": "CVSS_V3", "score": "garbage"}]}) == {}


def test_finding_names() -> None:
    assert finding_name({"id": "GHSA-x", "aliases": ["CVE-2021-1"]}) == "CVE-2021-1"
    assert finding_name({"id": "DSA-1-1", "upstream": ["CVE-1", "CVE-2"]}) == "DSA-1-1"
    assert finding_name({"id": "CVE-2024-3"}) == "CVE-2024-3"


def test_query_keys_use_source_packages_and_release_ecosystems() -> None:
    debian = OperatingSystem("debian", "12")
    libc = Package("deb", "libc6", "2.36-9", source_name="glibc", source_version="2.36-9")
    assert query_key(libc, debian) == QueryKey("Debian:12", "glibc", "2.36-9")
    assert query_key(libc, None) is None
    assert os_ecosystem(OperatingSystem("alpine", "3.19.1")) == "Alpine:v3.19"
    assert os_ecosystem(OperatingSystem("ubuntu", "22.04")) == "Ubuntu:22.04"
    assert os_ecosystem(OperatingSystem("cargohold-test")) is None
    assert query_key(Package("pypi", "Jinja2", "3.1.2"), None) == QueryKey(
        "PyPI", "jinja2", "3.1.2"
    )
    assert query_key(Package("golang", "golang.org/x/net", "v0.1.0"), None) == QueryKey(
        "Go", "golang.org/x/net", "0.1.0"
    )


def test_match_skips_withdrawn_and_reports_each_package_once() -> None:
    record = {
        "id": "GHSA-a",
        "aliases": ["CVE-1"],
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": "a"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    withdrawn = {
        **record,
        "id": "GHSA-b",
        "aliases": ["CVE-2"],
        "withdrawn": "2024-01-01T00:00:00Z",
    }
    inventory = Inventory(
        None,
        (
            Package("npm", "a", "1.0.0", "x/node_modules/a"),
            Package("npm", "a", "1.0.0", "y/node_modules/a"),
        ),
    )
    found = match(inventory, lambda _: [record, withdrawn])
    assert [(f.name, f.package_name) for f in found] == [("CVE-1", "a")]
