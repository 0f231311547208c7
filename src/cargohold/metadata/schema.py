"""The metadata database's tables: the single source of truth of the registry.

Blob bytes live in the storage driver; everything that says what exists, who may read it and
what points where lives here. Timestamps are epoch seconds (float), as the ECR API returns them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = sa.String(140)

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

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
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

# -- identities -------------------------------------------------------------------------------
# Principals are IAM identities: users today; roles (trust policy, session limits) and the
# account root join with the IAM issue, whose groups, memberships and policies point here by `id`.
principals = sa.Table(
    "principals",
    metadata,
    # AWS's unique id: `AIDA…` for a user, `AROA…` for a role, the account id for its root.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "account_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    # IAM names are unique regardless of case; `name_key` is the case-folded name.
    sa.Column("name_key", sa.String(64), nullable=False),
    sa.Column("path", sa.String(512), nullable=False, server_default="/"),
    sa.Column("arn", sa.String(1024), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("account_id", "kind", "name_key"),
    sa.UniqueConstraint("arn"),
)

# Long-term access keys. The secret is a SecretBox ciphertext: SigV4 needs the plaintext back,
# so it is encrypted (never hashed) with a key that lives outside the database.
access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column(
        "principal_id",
        sa.String(32),
        sa.ForeignKey("principals.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("secret", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("last_used_service", sa.String(64)),
    sa.Column("last_used_region", sa.String(32)),
    sa.Index(None, "principal_id"),
)

# -- IAM: roles, groups, policies; STS sessions ---------------------------------------------------
# What a role is beyond its `principals` row: its trust policy (who may assume it) and limits.
roles = sa.Table(
    "roles",
    metadata,
    sa.Column(
        "principal_id",
        sa.String(32),
        sa.ForeignKey("principals.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("trust_policy", sa.Text, nullable=False),
    sa.Column("description", sa.String(1000)),
    sa.Column("max_session_duration", sa.Integer, nullable=False),
)

iam_groups = sa.Table(
    "iam_groups",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # `AGPA…`
    sa.Column(
        "account_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("name_key", sa.String(128), nullable=False),
    sa.Column("path", sa.String(512), nullable=False, server_default="/"),
    sa.Column("arn", sa.String(1024), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("account_id", "name_key"),
    sa.UniqueConstraint("arn"),
)

group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column(
        "group_id",
        sa.String(32),
        sa.ForeignKey("iam_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "principal_id",
        sa.String(32),
        sa.ForeignKey("principals.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.Index(None, "principal_id"),
)

# Inline policies belong to exactly one user or role (`principal_id`) or group (`group_id`).
inline_policies = sa.Table(
    "inline_policies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("principal_id", sa.String(32), sa.ForeignKey("principals.id", ondelete="CASCADE")),
    sa.Column("group_id", sa.String(32), sa.ForeignKey("iam_groups.id", ondelete="CASCADE")),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("principal_id", "name"),
    sa.UniqueConstraint("group_id", "name"),
    sa.Index(None, "group_id"),
)

# Managed policies: the account's own, and AWS's (no account; ARN `arn:aws:iam::aws:policy/…`).
managed_policies = sa.Table(
    "managed_policies",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # `ANPA…`
    sa.Column(
        "account_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        nullable=True,
    ),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("name_key", sa.String(128), nullable=False),
    sa.Column("path", sa.String(512), nullable=False, server_default="/"),
    sa.Column("arn", sa.String(2048), nullable=False),
    sa.Column("description", sa.String(1000)),
    sa.Column("default_version", sa.String(16), nullable=False),
    # Version ids are never reused: the next one is `v<next_version>` whatever was deleted.
    sa.Column("next_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("account_id", "name_key"),
    sa.UniqueConstraint("arn"),
)

policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column(
        "policy_id",
        sa.String(32),
        sa.ForeignKey("managed_policies.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version_id", sa.String(16), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# A managed policy attached to one user or role (`principal_id`) or group (`group_id`).
policy_attachments = sa.Table(
    "policy_attachments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "policy_id",
        sa.String(32),
        sa.ForeignKey("managed_policies.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("principal_id", sa.String(32), sa.ForeignKey("principals.id", ondelete="CASCADE")),
    sa.Column("group_id", sa.String(32), sa.ForeignKey("iam_groups.id", ondelete="CASCADE")),
    sa.Column("attached_at", sa.Float, nullable=False),
    sa.UniqueConstraint("policy_id", "principal_id"),
    sa.UniqueConstraint("policy_id", "group_id"),
    sa.Index(None, "principal_id"),
    sa.Index(None, "group_id"),
)

# STS sessions: temporary credentials (`ASIA…`) of a user (GetSessionToken) or a role
# (AssumeRole). The secret and the session token are SecretBox ciphertexts sealed with the key id
# as context. Deleting the user or role ends its sessions.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column(
        "principal_id",
        sa.String(32),
        sa.ForeignKey("principals.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("arn", sa.String(1024), nullable=False),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("session_name", sa.String(64)),
    sa.Column("role_arn", sa.String(1024)),
    sa.Column("source_arn", sa.String(1024)),
    sa.Column("chained", sa.Boolean, nullable=False, server_default=sa.false()),
    # The session policies an AssumeRole call passed (Policy, and the documents of PolicyArns)
    # as a JSON list: the session may do only what one of them allows, as well as its role.
    sa.Column("session_policy", sa.Text),
    sa.Column("secret", sa.LargeBinary, nullable=False),
    sa.Column("token", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index(None, "principal_id"),
    sa.Index(None, "expires_at"),
)

# -- vulnerability scanning ---------------------------------------------------------------------
# The vulnerability database: OSV records as imported (`document`), indexed by the packages they
# affect. `imported_at` moves only when a record is new or its `modified` changed, so "what
# changed since" is a query (CONTINUOUS_SCAN re-matches only images holding those packages).
vulnerabilities = sa.Table(
    "vulnerabilities",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("modified", sa.String(64), nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("imported_at", sa.Float, nullable=False),
    sa.Index(None, "imported_at"),
)

vulnerability_packages = sa.Table(
    "vulnerability_packages",
    metadata,
    sa.Column(
        "vulnerability_id",
        sa.String(255),
        sa.ForeignKey("vulnerabilities.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Normalised: `Ubuntu:22.04` for `Ubuntu:22.04:LTS`, PEP 503 names for PyPI.
    sa.Column("ecosystem", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Index(None, "ecosystem", "name"),
)

# The registry's scanning configuration (PutRegistryScanningConfiguration): BASIC, and rules of
# a scan frequency with wildcard repository filters.
scanning_configurations = sa.Table(
    "scanning_configurations",
    metadata,
    sa.Column(
        "registry_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("scan_type", sa.String(16), nullable=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# One scan per image manifest: its status, the inventory it read (so the image can be matched
# again without reading layers) and, once COMPLETE, its findings.
scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "manifest_id",
        sa.Integer,
        sa.ForeignKey("manifests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    # When the last scan was asked for (scan on push or StartImageScan): the daily quota.
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float),
    sa.Column("vulndb_updated_at", sa.Float),
    sa.Column("inventory", sa.JSON),
    sa.Column("severity_counts", sa.JSON, nullable=False, server_default="{}"),
    # The CycloneDX SBOM attached to the image as a referrer.
    sa.Column("sbom_digest", DIGEST),
    sa.UniqueConstraint("manifest_id"),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column(
        "scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True
    ),
    # The finding's place in the scan's answer: most severe first.
    sa.Column("ordinal", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("attributes", sa.JSON, nullable=False),
)

# The (ecosystem, name) of every package a scan's inventory holds, for the reverse lookup a
# changed vulnerability database needs.
scan_packages = sa.Table(
    "scan_packages",
    metadata,
    sa.Column(
        "scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("ecosystem", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Index(None, "ecosystem", "name"),
)

# -- background work ----------------------------------------------------------------------------
# Jobs any node may claim (PostgreSQL: FOR UPDATE SKIP LOCKED). A claimed job holds a lease its
# runner extends while it works; a lease that runs out (a node died) makes the job claimable
# again, until `attempts` reaches the job's limit.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("run_after", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("error", sa.Text),
    sa.Index(None, "status", "run_after"),
)

# -- resource-based policies and the audit log --------------------------------------------------
# ECR's repository policy (SetRepositoryPolicy): one per repository, gone with it.
repository_policies = sa.Table(
    "repository_policies",
    metadata,
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("policy_text", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# ECR's registry policy (PutRegistryPolicy): one per registry (account).
registry_policies = sa.Table(
    "registry_policies",
    metadata,
    sa.Column(
        "registry_id",
        sa.String(12),
        sa.ForeignKey("registries.account_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("policy_text", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Events: the audit log (`kind` "audit": one CloudTrail-like record per authorization decision,
# `document` holding the whole record) and, later, notifications. Not tied to a registry row:
# a denied caller may name an account this server does not hold. The columns beside `document`
# are what the audit log is searched by.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("event_time", sa.Float, nullable=False),
    sa.Column("account_id", sa.String(12)),
    sa.Column("event_source", sa.String(64), nullable=False),
    sa.Column("event_name", sa.String(128), nullable=False),
    sa.Column("principal_arn", sa.String(2048)),
    sa.Column("error_code", sa.String(64)),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Index(None, "kind", "event_time"),
    sa.Index(None, "principal_arn", "event_time"),
)
