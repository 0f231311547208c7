"""What a lifecycle policy does to a repository, from the manifests it holds: the images the
rules see (`domain/lifecycle.py` decides), then the referrers that go with their subject. The
preview and the run both call `plan`, so a preview says exactly what the next run at the same
time does. Also the audit record of a run, shaped as ECR's `PolicyExecutionEvent`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.domain.lifecycle import LifecycleImage, evaluate
from cargohold.domain.lifecycle_policy import LifecycleRule
from cargohold.domain.principal import repository_arn
from cargohold.domain.records import LifecycleManifest, Repository

ACTIVE = "ACTIVE"
ARCHIVED = "ARCHIVED"
ACTIVATING = "ACTIVATING"


@dataclass(frozen=True, slots=True)
class PlannedAction:
    manifest: LifecycleManifest
    rule: LifecycleRule
    #: "expire" or "transition".
    action: str

    @property
    def storage_class(self) -> str:
        """The image's storage class before the action, as the API spells it."""
        return "ARCHIVE" if self.manifest.image_status == ARCHIVED else "STANDARD"

    def preview_result(self) -> dict[str, Any]:
        """One `LifecyclePolicyPreviewResult`, timestamps as epoch seconds."""
        action: dict[str, Any] = {"type": self.action.upper()}
        if self.action == "transition":
            action["targetStorageClass"] = "ARCHIVE"
        return {
            "imageTags": list(self.manifest.tags),
            "imageDigest": self.manifest.digest,
            "imagePushedAt": self.manifest.pushed_at,
            "action": action,
            "appliedRulePriority": self.rule.priority,
            "storageClass": self.storage_class,
        }


def _image(manifest: LifecycleManifest) -> LifecycleImage:
    return LifecycleImage(
        key=manifest.id,
        digest=manifest.digest,
        tags=manifest.tags,
        pushed_at=manifest.pushed_at,
        last_pulled_at=manifest.last_pulled_at,
        storage_class="archive" if manifest.image_status == ARCHIVED else "standard",
        archived_at=manifest.archived_at,
        activated_at=manifest.activated_at,
        in_index=manifest.in_index,
    )


def plan(
    rules: Sequence[LifecycleRule], manifests: Sequence[LifecycleManifest], now: float
) -> list[PlannedAction]:
    """The actions of the policy at `now`: each image the rules act on, oldest first, then the
    referrers of each (recursively), which go the same way."""
    digests = {m.digest for m in manifests}
    referrers: dict[str, list[LifecycleManifest]] = {}
    for manifest in manifests:
        if manifest.subject_digest is not None and manifest.subject_digest in digests:
            referrers.setdefault(manifest.subject_digest, []).append(manifest)
    # A referrer of an image present is not an image of its own; an image being restored is
    # in neither storage class until it is ACTIVE again.
    images = [
        _image(m)
        for m in manifests
        if m.subject_digest not in digests and m.image_status != ACTIVATING
    ]
    by_id = {m.id: m for m in manifests}
    planned: list[PlannedAction] = []
    seen: set[int] = set()
    for decision in evaluate(rules, images, now):
        pending = [by_id[decision.image.key]]
        while pending:
            manifest = pending.pop(0)
            if manifest.id in seen:
                continue
            seen.add(manifest.id)
            if decision.action == "transition" and manifest.image_status != ACTIVE:
                continue
            planned.append(PlannedAction(manifest, decision.rule, decision.action))
            pending.extend(referrers.get(manifest.digest, ()))
    return planned


_COUNT_TYPES = {
    "imageCountMoreThan": "Image count more than",
    "sinceImagePushed": "Time since image pushed",
    "sinceImagePulled": "Time since image pulled",
    "sinceImageTransitioned": "Time since image transitioned",
}


def _event_rule(rule: LifecycleRule) -> dict[str, Any]:
    selection: dict[str, Any] = {
        "tagStatus": rule.tag_status.capitalize(),
        "tagPrefixList": list(rule.tag_prefixes),
        "tagPatternList": list(rule.tag_patterns),
        "storageClass": rule.storage_class.capitalize(),
        "countType": _COUNT_TYPES[rule.count_type],
    }
    if rule.count_unit is not None:
        selection["countUnit"] = rule.count_unit.capitalize()
    selection["countNumber"] = rule.count_number
    shaped: dict[str, Any] = {"rulePriority": rule.priority}
    if rule.description is not None:
        shaped["description"] = rule.description
    shaped["lifecycleEventSelection"] = selection
    shaped["action"] = rule.action
    return shaped


def _image_action(action: PlannedAction) -> dict[str, Any]:
    return {
        "lifecycleEventImage": {
            "digest": action.manifest.digest,
            "tagStatus": "Tagged" if action.manifest.tags else "Untagged",
            "tagList": list(action.manifest.tags),
            "pushedAt": int(action.manifest.pushed_at * 1000),
        },
        "rulePriority": action.rule.priority,
        "action": action.action,
    }


def execution_event(
    repository: Repository,
    region: str,
    rules: Sequence[LifecycleRule],
    actions: Sequence[PlannedAction],
    *,
    now: float,
    iso_time: str,
    policy_updated_at: float,
) -> dict[str, Any]:
    """The CloudTrail record of one run, as ECR records a lifecycle run: an `AwsServiceEvent`
    named `PolicyExecutionEvent`, times in milliseconds."""
    account = repository.registry_id
    image_actions = [_image_action(each) for each in actions]
    policy_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{repository.id}/{policy_updated_at!r}")
    return {
        "eventVersion": "1.08",
        "userIdentity": {"accountId": account, "invokedBy": "AWS Internal"},
        "eventTime": iso_time,
        "eventSource": "ecr.amazonaws.com",
        "eventName": "PolicyExecutionEvent",
        "awsRegion": region,
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "requestParameters": None,
        "responseElements": None,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "resources": [
            {
                "ARN": repository_arn(region, account, repository.name),
                "accountId": account,
                "type": "AWS::ECR::Repository",
            }
        ],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "serviceEventDetails": {
            "repositoryName": repository.name,
            "lifecycleEventPolicy": {
                "lifecycleEventRules": [_event_rule(rule) for rule in rules],
                "lastEvaluatedAt": int(now * 1000),
                "policyVersion": 1,
                "policyId": str(policy_id),
            },
            "lifecycleEventImageActions": image_actions,
            "lifecycleEventFailureDetails": [],
        },
        "eventCategory": "Management",
    }
