"""What scans found: the scan state DescribeImages shows for each image, and the pages of
DescribeImageScanFindings.

An index answers from its children: its state combines theirs, and its findings are theirs
together, each naming the child's platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cargohold.domain.errors import InvalidParameter, ScanNotFound
from cargohold.domain.manifest import ParsedManifest, parse_manifest
from cargohold.domain.records import Manifest, Repository
from cargohold.domain.scans import (
    COMPLETE,
    FAILED,
    IN_PROGRESS,
    UNSUPPORTED_IMAGE,
    Scan,
    StoredFinding,
)
from cargohold.domain.vulnerabilities import SEVERITIES
from cargohold.ports import Metadata
from cargohold.service.images import ImageId, ImageService
from cargohold.service.tokens import decode_token, encode_token

DEFAULT_FINDINGS_PAGE = 100

DESCRIPTION_IN_PROGRESS = "The scan is in progress."
DESCRIPTION_COMPLETE = "The scan was completed successfully."


@dataclass(frozen=True, slots=True)
class ScanState:
    """What DescribeImages and DescribeImageScanFindings say about an image's scan."""

    status: str
    description: str
    completed_at: float | None = None
    vulndb_updated_at: float | None = None
    severity_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FindingsPage:
    manifest: Manifest
    state: ScanState
    findings: list[StoredFinding]
    next_token: str | None = None


def scan_state(scan: Scan) -> ScanState:
    return ScanState(
        scan.status,
        scan.description,
        scan.completed_at,
        scan.vulndb_updated_at,
        dict(scan.severity_counts),
    )


def combined_state(states: list[ScanState]) -> ScanState:
    """An index's state from its children's: any in progress, then any failed, then
    complete (unsupported only when every child is)."""
    statuses = {s.status for s in states}
    counts: dict[str, int] = {}
    for state in states:
        for level, count in state.severity_counts.items():
            counts[level] = counts.get(level, 0) + count
    completed = [s.completed_at for s in states if s.completed_at is not None]
    updated = [s.vulndb_updated_at for s in states if s.vulndb_updated_at is not None]
    if IN_PROGRESS in statuses:
        return ScanState(IN_PROGRESS, DESCRIPTION_IN_PROGRESS)
    if FAILED in statuses:
        reasons = "; ".join(s.description for s in states if s.status == FAILED)
        return ScanState(FAILED, reasons, max(completed, default=None))
    if statuses == {UNSUPPORTED_IMAGE}:
        return ScanState(UNSUPPORTED_IMAGE, states[0].description, max(completed, default=None))
    return ScanState(
        COMPLETE,
        DESCRIPTION_COMPLETE,
        max(completed, default=None),
        max(updated, default=None),
        counts,
    )


def _page_limit(max_results: int | None) -> int:
    limit = DEFAULT_FINDINGS_PAGE if max_results is None else max_results
    if not 1 <= limit <= 1000:
        raise InvalidParameter(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: "
            "'Member must have value between 1 and 1000'"
        )
    return limit


def _page_after(next_token: str | None, repository: Repository, manifest: Manifest) -> int:
    """The ordinal the page starts after: -1 for the first page."""
    if next_token is None:
        return -1
    key = decode_token(next_token, "DescribeImageScanFindings", repository.id)
    if len(key) != 2 or key[0] != manifest.id or not isinstance(key[1], int):
        raise InvalidParameter(
            "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'"
        )
    after: int = key[1]
    return after


def _platform_label(platform: dict[str, Any]) -> str:
    return "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))


class FindingsService:
    def __init__(self, store: Metadata, images: ImageService) -> None:
        self._store = store
        self._images = images

    async def manifest(self, repository: Repository, image_id: ImageId) -> Manifest:
        """The manifest `image_id` names (ImageNotFound without one)."""
        page = await self._images.describe_images(repository, [image_id])
        return page.items[0].manifest

    async def image_children(
        self, repository: Repository, parsed: ParsedManifest
    ) -> list[Manifest]:
        """The manifests an index lists that this repository holds, in the index's order."""
        wanted = [str(c.digest) for c in parsed.children]
        async with self._store.read() as tx:
            found = await tx.manifests.manifests_by_digest(repository.id, wanted)
        by_digest = {m.digest: m for m in found}
        return [by_digest[d] for d in dict.fromkeys(wanted) if d in by_digest]

    async def states(
        self, repository: Repository, listed: Sequence[Manifest]
    ) -> dict[int, ScanState]:
        """The scan state of each listed manifest that has one (an index: of its children)."""
        parsed = {m.id: parse_manifest(m.content, m.media_type) for m in listed}
        children: dict[int, list[Manifest]] = {}
        for manifest in listed:
            if parsed[manifest.id].is_index:
                children[manifest.id] = await self.image_children(repository, parsed[manifest.id])
        ids = {m.id for m in listed} | {c.id for kids in children.values() for c in kids}
        async with self._store.read() as tx:
            scans = await tx.scans.scans_of(ids)
        states: dict[int, ScanState] = {}
        for manifest in listed:
            if manifest.id in children:
                kids = [scan_state(scans[c.id]) for c in children[manifest.id] if c.id in scans]
                if kids:
                    states[manifest.id] = combined_state(kids)
            elif manifest.id in scans:
                states[manifest.id] = scan_state(scans[manifest.id])
        return states

    async def describe_findings(
        self,
        repository: Repository,
        image_id: ImageId,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> FindingsPage:
        manifest = await self.manifest(repository, image_id)
        states = await self.states(repository, [manifest])
        state = states.get(manifest.id)
        if state is None:
            raise ScanNotFound(
                f"Image scan does not exist for the image with '{image_id.describe()}' in the "
                f"repository with name '{repository.name}' in the registry with id "
                f"'{repository.registry_id}'"
            )
        limit = _page_limit(max_results)
        after = _page_after(next_token, repository, manifest)
        if state.status != COMPLETE:
            return FindingsPage(manifest, state, [])
        found = await self._findings(repository, manifest, after, limit + 1)
        token = None
        if len(found) > limit:
            found = found[:limit]
            token = encode_token(
                "DescribeImageScanFindings", repository.id, [manifest.id, found[-1].ordinal]
            )
        return FindingsPage(manifest, state, found, token)

    async def _findings(
        self, repository: Repository, manifest: Manifest, after: int, limit: int
    ) -> list[StoredFinding]:
        parsed = parse_manifest(manifest.content, manifest.media_type)
        if parsed.is_index:
            return await self._index_findings(repository, parsed, after, limit)
        async with self._store.read() as tx:
            scan = await tx.scans.scan_of(manifest.id)
            if scan is None:
                return []
            return await tx.scans.findings_page(scan.id, after=after, limit=limit)

    async def _index_findings(
        self, repository: Repository, parsed: ParsedManifest, after: int, limit: int
    ) -> list[StoredFinding]:
        """An index's children's findings, each marked with the child's platform, ordered
        by severity, and numbered for paging."""
        platforms = {str(c.digest): c.platform or {} for c in parsed.children}
        merged: list[tuple[int, str, StoredFinding]] = []
        for child in await self.image_children(repository, parsed):
            label = _platform_label(platforms.get(child.digest, {}))
            async with self._store.read() as tx:
                scan = await tx.scans.scan_of(child.id)
                if scan is None:
                    continue
                rows = await tx.scans.findings_page(scan.id, after=-1, limit=1_000_000)
            for row in rows:
                attributes = [*row.attributes, {"key": "platform", "value": label or child.digest}]
                merged.append(
                    (
                        SEVERITIES.index(row.severity) if row.severity in SEVERITIES else 99,
                        f"{row.name}\0{label}",
                        StoredFinding(
                            0, row.name, row.severity, row.uri, row.description, attributes
                        ),
                    )
                )
        merged.sort(key=lambda item: (item[0], item[1]))
        numbered = [
            StoredFinding(i, f.name, f.severity, f.uri, f.description, f.attributes)
            for i, (_, _, f) in enumerate(merged)
        ]
        return [f for f in numbered if f.ordinal > after][:limit]


__all__ = [
    "DESCRIPTION_COMPLETE",
    "DESCRIPTION_IN_PROGRESS",
    "FindingsPage",
    "FindingsService",
    "ScanState",
    "combined_state",
    "scan_state",
]
