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

SOURCE = "aws.ecr"
IMAGE_ACTION = "ECR Image Action"
IMAGE_SCAN = "ECR Image Scan"


def event_time(epoch: float) -> str:
    """ISO 8601 in UTC to the second, as EventBridge writes `time`: 2019-11-16T01:54:34Z."""
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(epoch))


def repository_arn(region: str, account: str, repository: str) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{repository}"


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
    id: str = field(default_factory=new_id)

    @property
    def repository_name(self) -> str | None:
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
