"""Access: IAM identities, keys, groups, policies; STS sessions; resource policies; audit log."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema.base import metadata

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
