"""scanning: vulnerability database, scans, findings, jobs

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("run_after", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jobs_status_run_after"), ["status", "run_after"], unique=False
        )

    op.create_table(
        "vulnerabilities",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("modified", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("imported_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vulnerabilities")),
    )
    with op.batch_alter_table("vulnerabilities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vulnerabilities_imported_at"), ["imported_at"], unique=False
        )

    op.create_table(
        "scanning_configurations",
        sa.Column("registry_id", sa.String(length=12), nullable=False),
        sa.Column("scan_type", sa.String(length=16), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["registries.account_id"],
            name=op.f("fk_scanning_configurations_registry_id_registries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registry_id", name=op.f("pk_scanning_configurations")),
    )
    op.create_table(
        "vulnerability_packages",
        sa.Column("vulnerability_id", sa.String(length=255), nullable=False),
        sa.Column("ecosystem", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["vulnerability_id"],
            ["vulnerabilities.id"],
            name=op.f("fk_vulnerability_packages_vulnerability_id_vulnerabilities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "vulnerability_id", "ecosystem", "name", name=op.f("pk_vulnerability_packages")
        ),
    )
    with op.batch_alter_table("vulnerability_packages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vulnerability_packages_ecosystem_name"),
            ["ecosystem", "name"],
            unique=False,
        )

    op.create_table(
        "scans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("completed_at", sa.Float(), nullable=True),
        sa.Column("vulndb_updated_at", sa.Float(), nullable=True),
        sa.Column("inventory", sa.JSON(), nullable=True),
        sa.Column("severity_counts", sa.JSON(), server_default="{}", nullable=False),
        sa.Column("sbom_digest", sa.String(length=140), nullable=True),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            name=op.f("fk_scans_manifest_id_manifests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
        sa.UniqueConstraint("manifest_id", name=op.f("uq_scans_manifest_id")),
    )
    op.create_table(
        "findings",
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name=op.f("fk_findings_scan_id_scans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scan_id", "ordinal", name=op.f("pk_findings")),
    )
    op.create_table(
        "scan_packages",
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("ecosystem", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["scans.id"],
            name=op.f("fk_scan_packages_scan_id_scans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scan_id", "ecosystem", "name", name=op.f("pk_scan_packages")),
    )
    with op.batch_alter_table("scan_packages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scan_packages_ecosystem_name"), ["ecosystem", "name"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("scan_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_packages_ecosystem_name"))

    op.drop_table("scan_packages")
    op.drop_table("findings")
    op.drop_table("scans")
    with op.batch_alter_table("vulnerability_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vulnerability_packages_ecosystem_name"))

    op.drop_table("vulnerability_packages")
    op.drop_table("scanning_configurations")
    with op.batch_alter_table("vulnerabilities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vulnerabilities_imported_at"))

    op.drop_table("vulnerabilities")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_status_run_after"))

    op.drop_table("jobs")
