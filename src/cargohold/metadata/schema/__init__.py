"""The metadata database's tables: the single source of truth of the registry.

Blob bytes live in the storage driver; everything that says what exists, who may read it and
what points where lives here. Timestamps are epoch seconds (float), as the ECR API returns them.
"""

from __future__ import annotations

from cargohold.metadata.schema.access import (
    access_keys,
    events,
    group_members,
    iam_groups,
    inline_policies,
    managed_policies,
    policy_attachments,
    policy_versions,
    principals,
    registry_policies,
    repository_policies,
    roles,
    sessions,
)
from cargohold.metadata.schema.base import DIGEST, metadata
from cargohold.metadata.schema.changes import generations
from cargohold.metadata.schema.content import (
    account_settings,
    blobs,
    creation_templates,
    lifecycle_policies,
    lifecycle_previews,
    manifest_blobs,
    manifest_children,
    manifests,
    pull_time_exclusions,
    registries,
    repositories,
    repository_blobs,
    resource_tags,
    tags,
    uploads,
)
from cargohold.metadata.schema.ecs import (
    ecs_clusters,
    ecs_container_instances,
    ecs_task_definitions,
    ecs_tasks,
)
from cargohold.metadata.schema.logs import log_events, log_groups, log_streams
from cargohold.metadata.schema.outbox import event_cursors, event_outbox
from cargohold.metadata.schema.work import (
    findings,
    jobs,
    leases,
    scan_packages,
    scanning_configurations,
    scans,
    vulnerabilities,
    vulnerability_packages,
)

__all__ = [
    "DIGEST",
    "access_keys",
    "account_settings",
    "blobs",
    "creation_templates",
    "ecs_clusters",
    "ecs_container_instances",
    "ecs_task_definitions",
    "ecs_tasks",
    "event_cursors",
    "event_outbox",
    "events",
    "findings",
    "generations",
    "group_members",
    "iam_groups",
    "inline_policies",
    "jobs",
    "leases",
    "lifecycle_policies",
    "lifecycle_previews",
    "log_events",
    "log_groups",
    "log_streams",
    "managed_policies",
    "manifest_blobs",
    "manifest_children",
    "manifests",
    "metadata",
    "policy_attachments",
    "policy_versions",
    "principals",
    "pull_time_exclusions",
    "registries",
    "registry_policies",
    "repositories",
    "repository_blobs",
    "repository_policies",
    "resource_tags",
    "roles",
    "scan_packages",
    "scanning_configurations",
    "scans",
    "sessions",
    "tags",
    "uploads",
    "vulnerabilities",
    "vulnerability_packages",
]
