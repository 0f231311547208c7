"""Content: registries, repositories, manifests, tags, blobs, uploads, settings, templates."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema.base import DIGEST, metadata

registries = sa.Table(
    "registries",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "registry_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("tag_mutability", sa.String(40), nullable=False, server_default="MUTABLE"),
    sa.Column("tag_mutability_filters", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("scan_on_push", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("encryption", sa.JSON, nullable=False, server_default="{}"),
    sa.UniqueConstraint("registry_id", "name"),
)

# Garbage collection marks: `touched_at` moves whenever the blob is committed, mounted or
# referenced by a manifest being pushed (each under the row's lock), and a blob no manifest
# references is collected once untouched for the grace period; `deleting` marks one condemned,
# whose bytes may be gone already (docs/ARCHITECTURE.md, "Garbage collection").
blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("touched_at", sa.Float, nullable=False, server_default="0"),
    sa.Column("deleting", sa.Boolean, nullable=False, server_default=sa.false()),
    # Found missing or corrupted by a scrub: never served, until an upload brings it back.
    sa.Column("quarantined", sa.Boolean, nullable=False, server_default=sa.false()),
)

# The access boundary: a repository reads only the blobs linked to it.
repository_blobs = sa.Table(
    "repository_blobs",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("digest", DIGEST, sa.ForeignKey("blobs.digest"), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "digest"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("artifact_type", sa.String(255)),
    sa.Column("subject_digest", DIGEST),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("image_size", sa.BigInteger, nullable=False),
    sa.Column("annotations", sa.JSON, nullable=False, server_default="{}"),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("pushed_at", sa.Float, nullable=False),
    sa.Column("last_pulled_at", sa.Float),
    # ACTIVE, ARCHIVED (the archive storage class: listed, never served) or ACTIVATING.
    sa.Column("image_status", sa.String(16), nullable=False, server_default="ACTIVE"),
    sa.Column("archived_at", sa.Float),
    sa.Column("activated_at", sa.Float),
    sa.UniqueConstraint("repository_id", "digest"),
    sa.Index(None, "repository_id", "subject_digest"),
)

# Reachability, so garbage collection and lifecycle expiry are queries.
manifest_blobs = sa.Table(
    "manifest_blobs",
    metadata,
    sa.Column(
        "manifest_id",
        sa.Integer,
        sa.ForeignKey("manifests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Index(None, "digest"),
)

manifest_children = sa.Table(
    "manifest_children",
    metadata,
    sa.Column(
        "manifest_id",
        sa.Integer,
        sa.ForeignKey("manifests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("child_digest", DIGEST, primary_key=True),
    sa.Index(None, "child_digest"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column(
        "manifest_id", sa.Integer, sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index(None, "manifest_id"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("hash_algorithm", sa.String(16), nullable=False),
    sa.Column("hash_state", sa.LargeBinary),
    sa.Column("driver_state", sa.JSON, nullable=False),
    # Part sizes, for ECR's rule that every layer part but the last is at least 5 MiB.
    sa.Column("part_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_part_size", sa.BigInteger),
    sa.Column("smallest_earlier_part", sa.BigInteger),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Resource tags (TagResource); ECR tags repositories.
resource_tags = sa.Table(
    "resource_tags",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

account_settings = sa.Table(
    "account_settings",
    metadata,
    sa.Column(
        "registry_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(64), nullable=False),
)

# Repository creation templates; `document` holds the template's settings as ECR shapes them.
creation_templates = sa.Table(
    "creation_templates",
    metadata,
    sa.Column(
        "registry_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("prefix", sa.String(256), primary_key=True),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# A repository's lifecycle policy; `next_run_at` is claimed by compare-and-set, so each period's
# run happens once whatever the number of processes and nodes.
lifecycle_policies = sa.Table(
    "lifecycle_policies",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("policy_text", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("last_evaluated_at", sa.Float),
    sa.Column("next_run_at", sa.Float, nullable=False),
    sa.Index(None, "next_run_at"),
)

# The latest lifecycle policy preview of a repository: its text, status and, once COMPLETE,
# what the policy would do (a JSON list of actions).
lifecycle_previews = sa.Table(
    "lifecycle_previews",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("policy_text", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("results", sa.JSON),
)

# Principals whose pulls never move `last_pulled_at` (RegisterPullTimeUpdateExclusion).
pull_time_exclusions = sa.Table(
    "pull_time_exclusions",
    metadata,
    sa.Column(
        "registry_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("principal_arn", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)
