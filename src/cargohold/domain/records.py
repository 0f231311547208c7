"""Records the metadata store returns to the service layer: plain frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Repository:
    id: int
    registry_id: str
    name: str
    created_at: float
    tag_mutability: str = "MUTABLE"
    tag_mutability_filters: list[dict[str, str]] = field(default_factory=list)
    scan_on_push: bool = False
    encryption: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Manifest:
    id: int
    repository_id: int
    digest: str
    media_type: str
    artifact_type: str | None
    subject_digest: str | None
    size: int
    image_size: int
    annotations: dict[str, str]
    content: bytes
    pushed_at: float
    last_pulled_at: float | None
    #: ACTIVE, ARCHIVED or ACTIVATING.
    image_status: str = "ACTIVE"
    archived_at: float | None = None
    activated_at: float | None = None


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """A manifest without its bytes, with its tags: what listings and DescribeImages need."""

    id: int
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    image_size: int
    annotations: dict[str, str]
    pushed_at: float
    last_pulled_at: float | None
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    repository_id: int
    offset: int
    hash_algorithm: str
    hash_state: bytes | None
    driver_state: dict[str, Any]
    created_at: float
    updated_at: float
    part_count: int = 0
    last_part_size: int | None = None
    smallest_earlier_part: int | None = None


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """A repository or registry policy as stored: its text and when it was last set."""

    text: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class RepositoryFacts:
    """What authorization needs about one repository: its policy and its tags."""

    policy: str | None
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One audit event as stored."""

    id: int
    kind: str
    event_time: float
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredLifecyclePolicy:
    """A repository's lifecycle policy as stored."""

    text: str
    updated_at: float
    last_evaluated_at: float | None


@dataclass(frozen=True, slots=True)
class StoredPreview:
    """A repository's latest lifecycle policy preview; `results` once it is COMPLETE."""

    text: str
    status: str
    started_at: float
    results: list[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class LifecycleManifest:
    """What lifecycle evaluation reads of one manifest: no bytes."""

    id: int
    digest: str
    tags: tuple[str, ...]
    subject_digest: str | None
    pushed_at: float
    last_pulled_at: float | None
    image_status: str
    archived_at: float | None
    activated_at: float | None
    #: Listed as a child by an index of the same repository.
    in_index: bool
