"""Background work: the vulnerability database, image scans and their findings, jobs."""

from __future__ import annotations

import sqlalchemy as sa

from cargohold.metadata.schema.base import DIGEST, metadata

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

# Named leases (`metadata.leases`): whoever holds a name does the work behind it (the delivery of
# events to one webhook target) until `expires_at`, unless it renews first.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
