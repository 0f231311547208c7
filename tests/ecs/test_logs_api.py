"""The CloudWatch Logs subset through boto3 against a live server: groups, streams, events put
and read back (from the head or the tail, with tokens), filtered across streams; its errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.server import RegistryServer


@pytest.fixture(scope="module")
def logs(ecs_server: RegistryServer) -> Any:
    return ecs_server.aws_client("logs")


def code_of(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_groups_streams_and_events(logs: Any) -> None:
    logs.create_log_group(logGroupName="/ecs/app")
    assert code_of(lambda: logs.create_log_group(logGroupName="/ecs/app")) == (
        "ResourceAlreadyExistsException"
    )
    groups = logs.describe_log_groups(logGroupNamePrefix="/ecs/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/ecs/app"]
    assert groups[0]["arn"].endswith(":log-group:/ecs/app:*")
    logs.create_log_stream(logGroupName="/ecs/app", logStreamName="ecs/web/1")
    logs.create_log_stream(logGroupName="/ecs/app", logStreamName="ecs/web/2")
    events = [{"timestamp": 1_700_000_000_000 + i, "message": f"line {i}"} for i in range(5)]
    logs.put_log_events(logGroupName="/ecs/app", logStreamName="ecs/web/1", logEvents=events)
    logs.put_log_events(
        logGroupName="/ecs/app",
        logStreamName="ecs/web/2",
        logEvents=[{"timestamp": 1_700_000_000_100, "message": "other error"}],
    )

    head = logs.get_log_events(
        logGroupName="/ecs/app", logStreamName="ecs/web/1", startFromHead=True, limit=2
    )
    assert [e["message"] for e in head["events"]] == ["line 0", "line 1"]
    more = logs.get_log_events(
        logGroupName="/ecs/app", logStreamName="ecs/web/1", nextToken=head["nextForwardToken"]
    )
    assert [e["message"] for e in more["events"]] == ["line 2", "line 3", "line 4"]
    tail = logs.get_log_events(logGroupName="/ecs/app", logStreamName="ecs/web/1", limit=2)
    assert [e["message"] for e in tail["events"]] == ["line 3", "line 4"]

    streams = logs.describe_log_streams(logGroupName="/ecs/app")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["ecs/web/1", "ecs/web/2"]
    assert streams[0]["firstEventTimestamp"] == 1_700_000_000_000
    assert streams[0]["lastEventTimestamp"] == 1_700_000_000_004

    found = logs.filter_log_events(logGroupName="/ecs/app", filterPattern="error")["events"]
    assert [(e["logStreamName"], e["message"]) for e in found] == [("ecs/web/2", "other error")]
    found = logs.filter_log_events(logGroupName="/ecs/app", filterPattern='"line 3"')["events"]
    assert [e["message"] for e in found] == ["line 3"]
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName="/ecs/app", filterPattern="line", PaginationConfig={"PageSize": 2}
    )
    sizes = [len(page["events"]) for page in pages]
    assert sizes[0] == 2 and sum(sizes) == 5
    pages = logs.get_paginator("describe_log_streams").paginate(
        logGroupName="/ecs/app", PaginationConfig={"PageSize": 1}
    )
    names = [s["logStreamName"] for page in pages for s in page["logStreams"]]
    assert names == ["ecs/web/1", "ecs/web/2"]

    backwards = [{"timestamp": 2, "message": "b"}, {"timestamp": 1, "message": "a"}]
    assert code_of(
        lambda: logs.put_log_events(
            logGroupName="/ecs/app", logStreamName="ecs/web/1", logEvents=backwards
        )
    ) == ("InvalidParameterException")
    logs.delete_log_group(logGroupName="/ecs/app")
    assert code_of(
        lambda: logs.get_log_events(logGroupName="/ecs/app", logStreamName="ecs/web/1")
    ) == ("ResourceNotFoundException")
    assert code_of(lambda: logs.delete_log_group(logGroupName="/ecs/app")) == (
        "ResourceNotFoundException"
    )


def test_other_operations_are_unsupported(logs: Any) -> None:
    assert code_of(lambda: logs.describe_destinations()) == "UnsupportedOperationException"


def test_a_group_is_named_by_name_or_arn(logs: Any) -> None:
    assert code_of(lambda: logs.describe_log_streams()) == "InvalidParameterException"
    assert code_of(lambda: logs.filter_log_events()) == "InvalidParameterException"
    logs.create_log_group(logGroupName="by-arn")
    arn = logs.describe_log_groups(logGroupNamePrefix="by-arn")["logGroups"][0]["logGroupArn"]
    logs.create_log_stream(logGroupName="by-arn", logStreamName="s")
    streams = logs.describe_log_streams(logGroupIdentifier=arn)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["s"]
