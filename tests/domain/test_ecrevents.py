"""ECR events in EventBridge's shape: the envelope's fields, the time to the second in UTC, the
JSON text the outbox stores, and the detail of each type as ECR's documentation shows it."""

from __future__ import annotations

import json

from cargohold.domain.ecrevents import (
    DELETE,
    FAILURE,
    IMAGE_ACTION,
    IMAGE_SCAN,
    PUSH,
    SERVICE_EVENT,
    EcrEvent,
    event_time,
    image_action,
    image_scan,
    service_event,
)


def test_the_envelope_names_every_field_eventbridge_gives() -> None:
    detail = {"result": "SUCCESS", "repository-name": "web", "action-type": "PUSH"}
    event = EcrEvent(IMAGE_ACTION, "123456789012", "eu-west-1", 1573869274.9, detail)
    document = json.loads(event.to_json())
    assert document == {
        "version": "0",
        "id": event.id,
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "123456789012",
        "time": "2019-11-16T01:54:34Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }
    assert event.repository_name == "web"
    other = EcrEvent(IMAGE_ACTION, "123456789012", "eu-west-1", 0.0, {})
    assert other.id != event.id and len(other.id) == 36 and other.repository_name is None


def test_times_are_utc_to_the_second() -> None:
    assert event_time(0) == "1970-01-01T00:00:00Z"
    assert event_time(1_700_000_000.999) == "2023-11-14T22:13:20Z"


def test_an_image_action_has_the_documented_detail() -> None:
    digest = "sha256:" + "7f" * 32
    pushed = image_action(
        PUSH,
        account="123456789012",
        region="us-west-2",
        repository="my-repository-name",
        digest=digest,
        tag="latest",
        now=1573869274.0,
    )
    assert pushed.document()["detail"] == {
        "result": "SUCCESS",
        "repository-name": "my-repository-name",
        "image-digest": digest,
        "action-type": "PUSH",
        "image-tag": "latest",
    }
    assert pushed.document()["resources"] == []
    deleted = image_action(
        DELETE,
        account="123456789012",
        region="us-west-2",
        repository="r",
        digest=digest,
        result=FAILURE,
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        artifact_media_type="application/vnd.oci.image.config.v1+json",
        now=0.0,
    )
    assert deleted.document()["detail"] == {
        "result": "FAILURE",
        "repository-name": "r",
        "image-digest": digest,
        "action-type": "DELETE",
        "manifest-media-type": "application/vnd.oci.image.manifest.v1+json",
        "artifact-media-type": "application/vnd.oci.image.config.v1+json",
    }


def test_an_image_scan_counts_only_the_severities_found() -> None:
    scan = image_scan(
        account="123456789012",
        region="us-east-1",
        repository="my-repository-name",
        digest="sha256:" + "ab" * 32,
        tags=[],
        status="COMPLETE",
        severity_counts={"CRITICAL": 10, "HIGH": 0, "MEDIUM": 9},
        now=1572316608.0,
    )
    document = scan.document()
    assert document["detail-type"] == IMAGE_SCAN and document["time"] == "2019-10-29T02:36:48Z"
    assert document["resources"] == [
        "arn:aws:ecr:us-east-1:123456789012:repository/my-repository-name"
    ]
    assert document["detail"] == {
        "scan-status": "COMPLETE",
        "repository-name": "my-repository-name",
        "finding-severity-counts": {"CRITICAL": 10, "MEDIUM": 9},
        "image-digest": "sha256:" + "ab" * 32,
        "image-tags": [],
    }
    assert scan.repository_name == "my-repository-name"


def test_a_service_event_carries_the_cloudtrail_record() -> None:
    record = {"eventName": "PolicyExecutionEvent", "eventType": "AwsServiceEvent"}
    event = service_event(record, account="123456789012", region="eu-west-1", repository="r", now=0)
    document = event.document()
    assert document["detail-type"] == SERVICE_EVENT == "AWS Service Event via CloudTrail"
    assert document["detail"] == record and document["source"] == "aws.ecr"
    assert event.repository_name == "r"
