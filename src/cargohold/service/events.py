"""The ECR events the services write, each in the write transaction of the change it reports
(`domain.ecrevents` builds them, `ports.outbox.Outbox` stores them).

Events are appended as a transaction's last statement: on PostgreSQL appending takes the
outbox's lock, held until the commit (see `metadata.outbox`). Reads never write events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cargohold.domain.ecrevents import FAILURE, PUSH, EcrEvent, image_action, image_scan
from cargohold.domain.manifest import ParsedManifest
from cargohold.domain.records import Manifest, Repository
from cargohold.ports import Transaction


def image_actions(
    action: str,
    repository: Repository,
    region: str,
    images: Iterable[tuple[Manifest, str | None]],
    now: float,
    *,
    result: str = "SUCCESS",
) -> list[EcrEvent]:
    """One "ECR Image Action" per (manifest, tag or None) of `repository`."""
    return [
        image_action(
            action,
            account=repository.registry_id,
            region=region,
            repository=repository.name,
            digest=manifest.digest,
            tag=tag,
            result=result,
            manifest_media_type=manifest.media_type,
            artifact_media_type=manifest.artifact_type,
            now=now,
        )
        for manifest, tag in images
    ]


def refused_push(
    repository: Repository,
    region: str,
    digest: str,
    tag: str | None,
    parsed: ParsedManifest,
    now: float,
) -> EcrEvent:
    """The FAILURE of a push the registry refused (an immutable tag already set)."""
    return image_action(
        PUSH,
        account=repository.registry_id,
        region=region,
        repository=repository.name,
        digest=digest,
        tag=tag,
        result=FAILURE,
        manifest_media_type=parsed.media_type,
        artifact_media_type=parsed.effective_artifact_type,
        now=now,
    )


def removed_images(manifest: Manifest, tags: Iterable[str]) -> list[tuple[Manifest, str | None]]:
    """What deleting `manifest` with its `tags` removes, as ECR reports it: one image per tag,
    or the image alone when it had none."""
    named: list[tuple[Manifest, str | None]] = [(manifest, tag) for tag in tags]
    return named or [(manifest, None)]


async def record_scan(
    tx: Transaction,
    region: str,
    manifest_id: int,
    status: str,
    severity_counts: Mapping[str, int],
    now: float,
) -> None:
    """ "ECR Image Scan" for the scan of `manifest_id` that ended with `status` (nothing when the
    image is gone)."""
    listed = await tx.manifests.manifests_by_id([manifest_id])
    if not listed:
        return
    manifest = listed[0]
    repository = (await tx.repositories.repositories_by_id([manifest.repository_id])).get(
        manifest.repository_id
    )
    if repository is None:
        return
    tags = (await tx.manifests.tags_by_manifest([manifest.id])).get(manifest.id, [])
    event = image_scan(
        account=repository.registry_id,
        region=region,
        repository=repository.name,
        digest=manifest.digest,
        tags=sorted(tags),
        status=status,
        severity_counts=severity_counts,
        now=now,
    )
    await tx.outbox.append_events([event])
