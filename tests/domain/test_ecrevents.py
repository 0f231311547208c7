"""ECR events in EventBridge's shape: the envelope's fields, the time to the second in UTC, and
the JSON text the outbox stores."""

from __future__ import annotations

import json

from cargohold.domain.ecrevents import IMAGE_ACTION, EcrEvent, event_time, repository_arn


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


def test_times_and_arns() -> None:
    assert event_time(0) == "1970-01-01T00:00:00Z"
    assert repository_arn("us-east-1", "123456789012", "team/web") == (
        "arn:aws:ecr:us-east-1:123456789012:repository/team/web"
    )
