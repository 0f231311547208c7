"""Scans as ECR defines them: statuses, the registry's scanning rules, and the records the
metadata store keeps for scans and background jobs."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cargohold.domain.errors import InvalidParameter

IN_PROGRESS = "IN_PROGRESS"
COMPLETE = "COMPLETE"
FAILED = "FAILED"
UNSUPPORTED_IMAGE = "UNSUPPORTED_IMAGE"

SCAN_ON_PUSH = "SCAN_ON_PUSH"
CONTINUOUS_SCAN = "CONTINUOUS_SCAN"
MANUAL = "MANUAL"
FREQUENCIES = (SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL)
BASIC = "BASIC"
ENHANCED = "ENHANCED"

#: A basic scan of one image at most once in this many seconds (ECR's quota).
SCAN_QUOTA_SECONDS = 24 * 3600
MAX_RULES = 2
MAX_FILTERS = 100
_FILTER = re.compile(r"[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*")


@dataclass(frozen=True, slots=True)
class ScanRule:
    frequency: str
    filters: tuple[str, ...]

    def matches(self, repository: str) -> bool:
        return any(fnmatch.fnmatchcase(repository, f) for f in self.filters)

    def to_json(self) -> dict[str, Any]:
        return {
            "scanFrequency": self.frequency,
            "repositoryFilters": [{"filter": f, "filterType": "WILDCARD"} for f in self.filters],
        }


@dataclass(frozen=True, slots=True)
class ScanningConfiguration:
    """The registry's scanning configuration; a new registry has BASIC and no rules."""

    scan_type: str = BASIC
    rules: tuple[ScanRule, ...] = ()

    def rule_for(self, repository: str) -> ScanRule | None:
        """The rule that applies: continuous scanning wins over scan on push over manual."""
        for frequency in FREQUENCIES:
            for rule in self.rules:
                if rule.frequency == frequency and rule.matches(repository):
                    return rule
        return None

    def frequency(self, repository: str, scan_on_push: bool) -> str:
        """The repository's effective frequency; its own `scanOnPush` counts as SCAN_ON_PUSH."""
        rule = self.rule_for(repository)
        if rule is not None and rule.frequency != MANUAL:
            return rule.frequency
        return SCAN_ON_PUSH if scan_on_push else MANUAL

    @classmethod
    def checked(
        cls, scan_type: str | None, rules: Sequence[Mapping[str, Any]] | None
    ) -> ScanningConfiguration:
        """PutRegistryScanningConfiguration's parameters, held to ECR's rules. Every frequency
        is available with BASIC here: this registry's own scanner runs them all."""
        scan_type = scan_type or BASIC
        if scan_type == ENHANCED:
            raise InvalidParameter(
                "Invalid parameter at 'scanType' failed to satisfy constraint: 'ENHANCED "
                "scanning is not available in this registry; use BASIC'"
            )
        if scan_type != BASIC:
            raise InvalidParameter(
                "Invalid parameter at 'scanType' failed to satisfy constraint: "
                "'Member must satisfy enum value set: [BASIC, ENHANCED]'"
            )
        given = list(rules or [])
        if len(given) > MAX_RULES:
            raise InvalidParameter(
                "Invalid parameter at 'rules' failed to satisfy constraint: "
                f"'Member must have length less than or equal to {MAX_RULES}'"
            )
        checked: list[ScanRule] = []
        for rule in given:
            frequency = rule.get("scanFrequency")
            if frequency not in FREQUENCIES:
                raise InvalidParameter(
                    "Invalid parameter at 'scanFrequency' failed to satisfy constraint: "
                    f"'Member must satisfy enum value set: [{', '.join(FREQUENCIES)}]'"
                )
            if any(r.frequency == frequency for r in checked):
                raise InvalidParameter(
                    f"Invalid parameter: only one rule may have the scan frequency {frequency}"
                )
            filters = []
            for item in rule.get("repositoryFilters") or []:
                pattern = item.get("filter", "")
                if item.get("filterType", "WILDCARD") != "WILDCARD":
                    raise InvalidParameter(
                        "Invalid parameter at 'filterType' failed to satisfy constraint: "
                        "'Member must satisfy enum value set: [WILDCARD]'"
                    )
                if not _FILTER.fullmatch(pattern) or len(pattern) > 256:
                    raise InvalidParameter(
                        f"Invalid parameter at 'filter' failed to satisfy constraint: "
                        f"'{pattern[:256]}' is not a valid repository filter"
                    )
                filters.append(pattern)
            if not filters or len(filters) > MAX_FILTERS:
                raise InvalidParameter(
                    "Invalid parameter at 'repositoryFilters' failed to satisfy constraint: "
                    f"'Member must have between 1 and {MAX_FILTERS} filters'"
                )
            checked.append(ScanRule(frequency, tuple(filters)))
        return cls(scan_type, tuple(checked))

    def to_json(self) -> dict[str, Any]:
        return {"scanType": self.scan_type, "rules": [r.to_json() for r in self.rules]}

    @classmethod
    def from_json(cls, scan_type: str, rules: Sequence[Mapping[str, Any]]) -> ScanningConfiguration:
        return cls(
            scan_type,
            tuple(
                ScanRule(r["scanFrequency"], tuple(f["filter"] for f in r["repositoryFilters"]))
                for r in rules
            ),
        )


@dataclass(frozen=True, slots=True)
class Scan:
    id: int
    manifest_id: int
    status: str
    description: str
    requested_at: float
    completed_at: float | None
    vulndb_updated_at: float | None
    severity_counts: dict[str, int] = field(default_factory=dict)
    inventory: dict[str, Any] | None = None
    sbom_digest: str | None = None


@dataclass(frozen=True, slots=True)
class StoredFinding:
    ordinal: int
    name: str
    severity: str
    uri: str
    description: str
    attributes: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
