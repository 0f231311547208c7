"""iam: roles, groups, inline and managed policies, attachments, STS sessions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("principal_id", sa.String(length=32), nullable=False),
        sa.Column("trust_policy", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("max_session_duration", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_roles_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("principal_id", name=op.f("pk_roles")),
    )
    op.create_table(
        "iam_groups",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", sa.String(length=128), nullable=False),
        sa.Column("path", sa.String(length=512), server_default="/", nullable=False),
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["registries.account_id"],
            name=op.f("fk_iam_groups_account_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iam_groups")),
        sa.UniqueConstraint(
            "account_id", "name_key", name=op.f("uq_iam_groups_account_id_name_key")
        ),
        sa.UniqueConstraint("arn", name=op.f("uq_iam_groups_arn")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("principal_id", sa.String(length=32), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["iam_groups.id"],
            name=op.f("fk_group_members_group_id_iam_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_group_members_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "principal_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_members_principal_id"), ["principal_id"], unique=False
        )
    op.create_table(
        "inline_policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal_id", sa.String(length=32), nullable=True),
        sa.Column("group_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["iam_groups.id"],
            name=op.f("fk_inline_policies_group_id_iam_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_inline_policies_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inline_policies")),
        sa.UniqueConstraint("group_id", "name", name=op.f("uq_inline_policies_group_id_name")),
        sa.UniqueConstraint(
            "principal_id", "name", name=op.f("uq_inline_policies_principal_id_name")
        ),
    )
    with op.batch_alter_table("inline_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inline_policies_group_id"), ["group_id"], unique=False)
    op.create_table(
        "managed_policies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("name_key", sa.String(length=128), nullable=False),
        sa.Column("path", sa.String(length=512), server_default="/", nullable=False),
        sa.Column("arn", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("default_version", sa.String(length=16), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["registries.account_id"],
            name=op.f("fk_managed_policies_account_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_managed_policies")),
        sa.UniqueConstraint(
            "account_id", "name_key", name=op.f("uq_managed_policies_account_id_name_key")
        ),
        sa.UniqueConstraint("arn", name=op.f("uq_managed_policies_arn")),
    )
    op.create_table(
        "policy_versions",
        sa.Column("policy_id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.String(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["managed_policies.id"],
            name=op.f("fk_policy_versions_policy_id_managed_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("policy_id", "version_id", name=op.f("pk_policy_versions")),
    )
    op.create_table(
        "policy_attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("policy_id", sa.String(length=32), nullable=False),
        sa.Column("principal_id", sa.String(length=32), nullable=True),
        sa.Column("group_id", sa.String(length=32), nullable=True),
        sa.Column("attached_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["iam_groups.id"],
            name=op.f("fk_policy_attachments_group_id_iam_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["managed_policies.id"],
            name=op.f("fk_policy_attachments_policy_id_managed_policies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_policy_attachments_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_attachments")),
        sa.UniqueConstraint(
            "policy_id", "group_id", name=op.f("uq_policy_attachments_policy_id_group_id")
        ),
        sa.UniqueConstraint(
            "policy_id", "principal_id", name=op.f("uq_policy_attachments_policy_id_principal_id")
        ),
    )
    with op.batch_alter_table("policy_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_attachments_group_id"), ["group_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_attachments_principal_id"), ["principal_id"], unique=False
        )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=20), nullable=False),
        sa.Column("principal_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("arn", sa.String(length=1024), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("session_name", sa.String(length=64), nullable=True),
        sa.Column("role_arn", sa.String(length=1024), nullable=True),
        sa.Column("source_arn", sa.String(length=1024), nullable=True),
        sa.Column("chained", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("session_policy", sa.Text(), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_sessions_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_sessions_principal_id"), ["principal_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_principal_id"))
        batch_op.drop_index(batch_op.f("ix_sessions_expires_at"))
    op.drop_table("sessions")
    with op.batch_alter_table("policy_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_attachments_principal_id"))
        batch_op.drop_index(batch_op.f("ix_policy_attachments_group_id"))
    op.drop_table("policy_attachments")
    op.drop_table("policy_versions")
    op.drop_table("managed_policies")
    with op.batch_alter_table("inline_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inline_policies_group_id"))
    op.drop_table("inline_policies")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_members_principal_id"))
    op.drop_table("group_members")
    op.drop_table("iam_groups")
    op.drop_table("roles")
