"""Registries, repositories and what they hold: the stores of a push and a pull."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from cargohold.domain.records import (
    Manifest,
    ManifestSummary,
    Repository,
    Upload,
)


class Registries(Protocol):
    """The registries: one per account, in its region."""

    async def ensure_registry(self, account_id: str, region: str, now: float) -> None: ...

    async def list_registries(self) -> list[tuple[str, str, float]]:
        """(account id, region, created at) of every registry, by account id."""
        ...

    async def registry_exists(self, account_id: str) -> bool: ...

    async def delete_registry(self, account_id: str) -> bool:
        """Deletes the registry and, by cascade, everything of its account; whether it
        existed."""
        ...


class Repositories(Protocol):
    """Repositories, their settings and their resource tags."""

    async def get_repository(self, registry_id: str, name: str) -> Repository | None: ...

    async def create_repository(
        self, registry_id: str, name: str, now: float, **settings: Any
    ) -> Repository: ...

    async def update_repository(self, repository_id: int, **values: Any) -> None: ...

    async def list_repositories(
        self, registry_id: str, *, after: str | None = None, limit: int | None = None
    ) -> list[Repository]: ...

    async def repositories_by_id(self, repository_ids: Iterable[int]) -> dict[int, Repository]:
        """The repositories with these ids, by id, those that exist."""
        ...

    async def delete_repository(self, repository_id: int) -> None: ...

    async def resource_tags(self, repository_id: int) -> dict[str, str]: ...

    async def put_resource_tags(self, repository_id: int, values: dict[str, str]) -> None:
        """Add or overwrite tags; tags not named are left as they are."""
        ...

    async def delete_resource_tags(self, repository_id: int, keys: Iterable[str]) -> None: ...


class Manifests(Protocol):
    """Manifests, the tags that point at them, and the referrers of a subject."""

    async def count_manifests(self, repository_id: int) -> int: ...

    async def get_manifest(self, repository_id: int, digest: str) -> Manifest | None: ...

    async def get_tagged_manifest(self, repository_id: int, tag: str) -> Manifest | None: ...

    async def existing_manifests(self, repository_id: int, digests: Iterable[str]) -> set[str]: ...

    async def put_manifest(
        self,
        *,
        repository_id: int,
        digest: str,
        media_type: str,
        artifact_type: str | None,
        subject_digest: str | None,
        content: bytes,
        image_size: int,
        annotations: dict[str, str],
        blob_digests: Sequence[str],
        child_digests: Sequence[str],
        now: float,
    ) -> tuple[int, bool]:
        """Insert the manifest unless present; return (id, created)."""
        ...

    async def delete_manifest(self, manifest_id: int) -> None: ...

    async def record_pull(self, manifest_id: int, now: float) -> None: ...

    async def referrers(
        self, repository_id: int, subject_digest: str, artifact_type: str | None
    ) -> list[Manifest]: ...

    async def list_manifests(
        self,
        repository_id: int,
        *,
        digests: Iterable[str] | None = None,
        tagged: bool | None = None,
    ) -> list[ManifestSummary]:
        """Manifests of a repository with their tags, oldest push first."""
        ...

    async def tag_target(self, repository_id: int, tag: str) -> int | None: ...

    async def set_tag(self, repository_id: int, tag: str, manifest_id: int, now: float) -> None: ...

    async def delete_tag(self, repository_id: int, tag: str) -> bool: ...

    async def list_tags(
        self, repository_id: int, *, after: str | None = None, limit: int | None = None
    ) -> list[str]: ...

    async def tags_of(self, manifest_id: int) -> list[str]: ...

    async def image_id_page(
        self,
        repository_id: int,
        *,
        tagged: bool | None,
        after: tuple[int, str | None] | None,
        limit: int,
        status: str | None = "ACTIVE",
    ) -> list[tuple[int, str, str | None]]:
        """(manifest id, digest, tag) rows: one per tag, one tagless row per untagged manifest,
        in push order then tag order, after the keyset `after`; of images in `status` (any
        when None)."""
        ...

    async def manifest_page(
        self,
        repository_id: int,
        *,
        tagged: bool | None,
        after_id: int | None,
        limit: int,
        status: str | None = "ACTIVE",
    ) -> list[Manifest]:
        """Manifests of a repository in push order, after the manifest id `after_id`; of
        images in `status` (any when None)."""
        ...

    async def manifests_by_id(self, manifest_ids: Iterable[int]) -> list[Manifest]: ...

    async def manifests_by_digest(
        self, repository_id: int, digests: Iterable[str]
    ) -> list[Manifest]:
        """The manifests of the repository with these digests, those that exist."""
        ...

    async def tags_by_manifest(self, manifest_ids: Iterable[int]) -> dict[int, list[str]]: ...

    async def manifest_parents(self, repository_id: int, child_digest: str) -> list[str]:
        """Digests of the repository's indexes that list `child_digest` as a child."""
        ...

    async def blob_referrers(self, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
        """For each blob some manifest of the repository references: one such manifest's id."""
        ...

    async def referrer_page(
        self,
        repository_id: int,
        subject_digest: str,
        *,
        artifact_types: Sequence[str] | None,
        after_digest: str | None,
        limit: int,
        status: str | None = "ACTIVE",
    ) -> list[Manifest]:
        """Manifests whose subject is `subject_digest`, in digest order, after `after_digest`;
        in `status` (any when None)."""
        ...


class Blobs(Protocol):
    """Blobs and the links that let a repository read them."""

    async def linked_blob_size(self, repository_id: int, digest: str) -> int | None:
        """The blob's size when the repository may read it, else None."""
        ...

    async def linked_blob_sizes(
        self, repository_id: int, digests: Iterable[str]
    ) -> dict[str, int]: ...

    async def blob_size(self, digest: str) -> int | None: ...

    async def add_blob(self, repository_id: int, digest: str, size: int, now: float) -> None:
        """Record a committed blob and link it to the repository (both idempotent)."""
        ...

    async def link_blob(self, repository_id: int, digest: str, now: float) -> None: ...

    async def unlink_blob(self, repository_id: int, digest: str) -> bool: ...

    # -- garbage collection (docs/ARCHITECTURE.md, "Garbage collection") --------------------

    async def reserve_blob(self, digest: str, size: int, now: float) -> None:
        """Record the blob (or touch it, and take it back from garbage collection), holding
        its row until the transaction ends: its bytes may be written then."""
        ...

    async def touch_blobs(self, digests: Iterable[str], now: float) -> int:
        """Mark blobs in use now, holding their rows until the transaction ends; how many of
        them exist and are not condemned."""
        ...

    async def unreferenced_blobs(
        self, cutoff: float, *, after: str, limit: int
    ) -> list[tuple[str, int]]:
        """(digest, size) of blobs no manifest references, untouched since before `cutoff`,
        and of condemned ones; by digest, after `after`."""
        ...

    async def condemn_blobs(self, digests: Iterable[str], cutoff: float) -> list[str]:
        """Of these blobs, those still untouched since before `cutoff` (or condemned already)
        and referenced by no manifest: marked condemned, their repository links removed."""
        ...

    async def lock_condemned(self, digests: Iterable[str]) -> list[str]:
        """The condemned blobs among these, their rows held until the transaction ends."""
        ...

    async def delete_blob_rows(self, digests: Iterable[str]) -> None: ...

    async def known_blobs(self, digests: Iterable[str]) -> set[str]:
        """The digests among these that have a row (condemned or not)."""
        ...

    async def claim_orphan(self, digest: str, now: float) -> bool:
        """Hold a condemned row for bytes no row describes, unless one exists (or is being
        recorded); whether it was claimed."""
        ...

    async def referenced_blob_sizes(self) -> dict[str, int]:
        """Every blob some manifest references, with its size."""
        ...

    # -- scrub ------------------------------------------------------------------------------

    async def blobs_to_scrub(
        self, repository_id: int | None, *, after: str, limit: int
    ) -> list[tuple[str, int]]:
        """(digest, size) of the stored blobs (of one repository: those it may read), by
        digest, after `after`; condemned and quarantined ones left out."""
        ...

    async def lock_blob(self, digest: str) -> bool:
        """Hold the blob's row (stored, not condemned) until the transaction ends."""
        ...

    async def quarantine_blob(self, digest: str) -> None: ...

    async def images_using(self, digests: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """For each blob: (repository name, manifest digest) of every manifest referencing it."""
        ...


class Uploads(Protocol):
    """Upload sessions: offset, resumable hash state and driver state."""

    async def create_upload(
        self,
        upload_id: str,
        repository_id: int,
        hash_algorithm: str,
        hash_state: bytes | None,
        driver_state: dict[str, Any],
        now: float,
        *,
        limit: int | None = None,
        live_since: float = 0.0,
    ) -> bool:
        """Record a new session; with `limit`, only while the repository holds fewer sessions
        than that updated at or after `live_since` (whether it was recorded)."""
        ...

    async def get_upload(self, upload_id: str) -> Upload | None: ...

    async def advance_upload(
        self,
        upload_id: str,
        *,
        from_offset: int,
        to_offset: int,
        hash_state: bytes | None,
        driver_state: dict[str, Any],
        now: float,
        part_count: int,
        last_part_size: int | None,
        smallest_earlier_part: int | None,
    ) -> bool:
        """Move the upload forward only if nobody else moved it since `from_offset` was read."""
        ...

    async def delete_upload(self, upload_id: str) -> bool: ...

    async def stale_uploads(
        self, before: float, *, after: str = "", limit: int = 500
    ) -> list[Upload]:
        """Up to `limit` sessions last updated before `before`, by id, the ids past `after`."""
        ...

    async def delete_stale_uploads(self, upload_ids: Sequence[str], before: float) -> list[str]:
        """Delete those of the sessions still last updated before `before`; their ids."""
        ...

    async def upload_ids_among(self, upload_ids: Sequence[str]) -> set[str]:
        """The ids among `upload_ids` that name a session."""
        ...


class Templates(Protocol):
    """Repository creation templates and account settings."""

    async def get_account_setting(self, registry_id: str, name: str) -> str | None: ...

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> None: ...

    async def get_creation_template(
        self, registry_id: str, prefix: str
    ) -> dict[str, Any] | None: ...

    async def insert_creation_template(
        self, registry_id: str, prefix: str, document: dict[str, Any], now: float
    ) -> bool:
        """Insert the template unless one has this prefix already; whether it was inserted."""
        ...

    async def update_creation_template(
        self, registry_id: str, prefix: str, document: dict[str, Any], now: float
    ) -> bool: ...

    async def delete_creation_template(self, registry_id: str, prefix: str) -> bool: ...

    async def list_creation_templates(
        self,
        registry_id: str,
        *,
        prefixes: Iterable[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...
