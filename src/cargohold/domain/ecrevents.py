"""ECR's events in the shape Amazon EventBridge delivers them (`source: aws.ecr`).

An event is an envelope (`version`, `id`, `detail-type`, `source`, `account`, `time`, `region`,
`resources`) around a `detail` whose fields are the ones ECR documents for its detail type,
under their documented hyphenated names. These are pure values: the service layer builds them
in the write transaction of the change they report and the outbox stores their JSON text.
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cargohold.domain.eventids import new_id
from cargohold.domain.principal import repository_arn

SOURCE = "aws.ecr"
IMAGE_ACTION = "ECR Image Action"
IMAGE_SCAN = "ECR Image Scan"
#: How EventBridge carries a CloudTrail record of an action a service took on its own, such as
#: the `PolicyExecutionEvent` of a lifecycle policy run (ECR reports lifecycle expiry only so).
SERVICE_EVENT = "AWS Service Event via CloudTrail"

PUSH = "PUSH"
DELETE = "DELETE"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"


def event_time(epoch: float) -> str:
    """ISO 8601 in UTC to the second, as EventBridge writes `time`: 2019-11-16T01:54:34Z."""
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(epoch))


@dataclass(frozen=True, slots=True)
class EcrEvent:
    """One event; `document()` is what a target receives."""

    detail_type: str
    account: str
    region: str
    #: Epoch seconds.
    time: float
    detail: Mapping[str, Any]
    resources: tuple[str, ...] = ()
    #: The repository the event is about, when `detail` does not name it as `repository-name`.
    repository: str | None = None
    id: str = field(default_factory=new_id)

    @property
    def repository_name(self) -> str | None:
        """The repository the event is about (None: the registry as a whole)."""
        if self.repository is not None:
            return self.repository
        name = self.detail.get("repository-name")
        return name if isinstance(name, str) else None

    def document(self) -> dict[str, Any]:
        return {
            "version": "0",
            "id": self.id,
            "detail-type": self.detail_type,
            "source": SOURCE,
            "account": self.account,
            "time": event_time(self.time),
            "region": self.region,
            "resources": list(self.resources),
            "detail": dict(self.detail),
        }

    def to_json(self) -> str:
        return json.dumps(self.document(), separators=(",", ":"))


def image_action(
    action: str,
    *,
    account: str,
    region: str,
    repository: str,
    digest: str,
    tag: str | None = None,
    result: str = SUCCESS,
    manifest_media_type: str | None = None,
    artifact_media_type: str | None = None,
    now: float,
) -> EcrEvent:
    """ "ECR Image Action": a PUSH or DELETE of one image, SUCCESS or FAILURE. A push or delete
    that names a tag is one event with `image-tag`; one by digest alone has none."""
    detail: dict[str, Any] = {
        "result": result,
        "repository-name": repository,
        "image-digest": digest,
        "action-type": action,
    }
    if tag is not None:
        detail["image-tag"] = tag
    if manifest_media_type is not None:
        detail["manifest-media-type"] = manifest_media_type
    if artifact_media_type is not None:
        detail["artifact-media-type"] = artifact_media_type
    return EcrEvent(IMAGE_ACTION, account, region, now, detail)


def image_scan(
    *,
    account: str,
    region: str,
    repository: str,
    digest: str,
    tags: list[str],
    status: str,
    severity_counts: Mapping[str, int],
    now: float,
) -> EcrEvent:
    """ "ECR Image Scan": a basic scan ended. `finding-severity-counts` names only the
    severities with findings; `resources` is the repository's ARN."""
    detail: dict[str, Any] = {
        "scan-status": status,
        "repository-name": repository,
        "finding-severity-counts": {k: v for k, v in severity_counts.items() if v},
        "image-digest": digest,
        "image-tags": list(tags),
    }
    arn = repository_arn(region, account, repository)
    return EcrEvent(IMAGE_SCAN, account, region, now, detail, (arn,))


def service_event(
    record: Mapping[str, Any], *, account: str, region: str, repository: str | None, now: float
) -> EcrEvent:
    """A CloudTrail `AwsServiceEvent` record (a lifecycle policy's `PolicyExecutionEvent`) as
    EventBridge delivers it: the record is the `detail`."""
    return EcrEvent(SERVICE_EVENT, account, region, now, dict(record), repository=repository)
