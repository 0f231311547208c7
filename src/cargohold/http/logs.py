"""CloudWatch Logs as `cargohold.http.awsfront` serves it: AWS JSON 1.1 with the target prefix
`Logs_20140328`, validated by botocore's `logs` model: CreateLogGroup, DescribeLogGroups,
DeleteLogGroup, CreateLogStream, DescribeLogStreams, PutLogEvents, GetLogEvents and
FilterLogEvents; the model's others answer as unsupported.

Each call is authorized as `logs:<Operation>` on its log group
(`arn:aws:logs:REGION:ACCOUNT:log-group:NAME`) or, for the calls on one stream, on the stream
(`…:log-group:NAME:log-stream:STREAM`); DescribeLogGroups on `*`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from botocore.model import ServiceModel

from cargohold.domain.errors import AccessDenied, RegistryError
from cargohold.http.awsservice import AwsCall, AwsError, AwsService, Handler, ValidationFailed
from cargohold.ports import LogEvent, LogGroup, LogStream, Metadata
from cargohold.service.logs import LogsError, LogsService, Page
from cargohold.service.logs import group_name as logs_group_name

log = logging.getLogger(__name__)

SERVICE = "logs"
_STREAM_CALLS = frozenset({"CreateLogStream", "PutLogEvents", "GetLogEvents"})
#: The calls served that act on one log group.
_GROUP_CALLS = _STREAM_CALLS | {
    "CreateLogGroup",
    "DeleteLogGroup",
    "DescribeLogStreams",
    "FilterLogEvents",
}


def group_arn(call: AwsCall, name: str) -> str:
    return f"arn:aws:logs:{call.region}:{call.account}:log-group:{name}"


def group_name(call: AwsCall) -> str:
    return logs_group_name(call.region, call.account, call.params)


async def _resources(call: AwsCall) -> Sequence[str]:
    if call.operation not in _GROUP_CALLS:
        return ["*"]
    arn = group_arn(call, group_name(call))
    if call.operation in _STREAM_CALLS:
        return [f"{arn}:log-stream:{call.params['logStreamName']}"]
    return [arn]


def logs_error(exc: RegistryError, model: ServiceModel) -> AwsError:
    if isinstance(exc, LogsError):
        return AwsError(exc.code, str(exc))
    if isinstance(exc, AccessDenied):
        return AwsError("AccessDeniedException", exc.message)
    log.error("unexpected error in logs: %r", exc)
    return AwsError("ServiceUnavailableException", "The service cannot complete the request.", 500)


def logs_invalid(exc: ValidationFailed, model: ServiceModel) -> AwsError:
    return AwsError("InvalidParameterException", exc.message)


def _group_shape(call: AwsCall, group: LogGroup) -> dict[str, Any]:
    arn = group_arn(call, group.name)
    shape: dict[str, Any] = {
        "logGroupName": group.name,
        "creationTime": group.created_at,
        "metricFilterCount": 0,
        "arn": f"{arn}:*",
        "logGroupArn": arn,
        "storedBytes": group.stored_bytes,
        "logGroupClass": "STANDARD",
    }
    if group.retention_days is not None:
        shape["retentionInDays"] = group.retention_days
    return shape


def _stream_shape(call: AwsCall, group: str, stream: LogStream) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.created_at,
        "arn": f"{group_arn(call, group)}:log-stream:{stream.name}",
        "storedBytes": stream.stored_bytes,
    }
    for member, value in (
        ("firstEventTimestamp", stream.first_event),
        ("lastEventTimestamp", stream.last_event),
        ("lastIngestionTime", stream.last_ingestion),
    ):
        if value is not None:
            shape[member] = value
    return shape


def _event_shape(event: LogEvent) -> dict[str, Any]:
    return {
        "timestamp": event.timestamp,
        "message": event.message,
        "ingestionTime": event.ingested_at,
    }


def _page(page: Page[Any], name: str, shape: Callable[[Any], Any]) -> dict[str, Any]:
    result: dict[str, Any] = {name: [shape(item) for item in page.items]}
    if page.next_token is not None:
        result["nextToken"] = page.next_token
    return result


def group_handlers(logs: LogsService) -> dict[str, Handler]:
    async def create_group(call: AwsCall) -> dict[str, Any]:
        tags = call.params.get("tags") or {}
        await logs.create_group(call.account, group_name(call), tags)
        return {}

    async def describe_groups(call: AwsCall) -> dict[str, Any]:
        found = await logs.groups(call.account, call.params)
        return _page(found, "logGroups", lambda g: _group_shape(call, g))

    async def delete_group(call: AwsCall) -> dict[str, Any]:
        await logs.delete_group(call.account, group_name(call))
        return {}

    async def create_stream(call: AwsCall) -> dict[str, Any]:
        params = call.params
        await logs.create_stream(call.account, group_name(call), params["logStreamName"])
        return {}

    async def describe_streams(call: AwsCall) -> dict[str, Any]:
        group = group_name(call)
        found = await logs.streams(call.account, group, call.params)
        return _page(found, "logStreams", lambda s: _stream_shape(call, group, s))

    return {
        "CreateLogGroup": create_group,
        "DescribeLogGroups": describe_groups,
        "DeleteLogGroup": delete_group,
        "CreateLogStream": create_stream,
        "DescribeLogStreams": describe_streams,
    }


def event_handlers(logs: LogsService) -> dict[str, Handler]:
    async def put_events(call: AwsCall) -> dict[str, Any]:
        params = call.params
        await logs.put(call.account, group_name(call), params["logStreamName"], params["logEvents"])
        return {}

    async def get_events(call: AwsCall) -> dict[str, Any]:
        params = call.params
        page = await logs.get_events(
            call.account, group_name(call), params["logStreamName"], params
        )
        return {
            "events": [_event_shape(e) for e in page.events],
            "nextForwardToken": page.forward,
            "nextBackwardToken": page.backward,
        }

    async def filter_events(call: AwsCall) -> dict[str, Any]:
        found = await logs.filter_events(call.account, group_name(call), call.params)
        result: dict[str, Any] = {
            "events": [
                {**_event_shape(e), "logStreamName": e.stream, "eventId": str(e.id)}
                for e in found.events
            ],
            "searchedLogStreams": [
                {"logStreamName": name, "searchedCompletely": found.next_token is None}
                for name in found.streams
            ],
        }
        if found.next_token is not None:
            result["nextToken"] = found.next_token
        return result

    return {
        "PutLogEvents": put_events,
        "GetLogEvents": get_events,
        "FilterLogEvents": filter_events,
    }


def logs_service(store: Metadata, clock: Callable[[], float]) -> AwsService:
    logs = LogsService(store, clock)
    return AwsService(
        SERVICE,
        {**group_handlers(logs), **event_handlers(logs)},
        resources=_resources,
        errors=logs_error,
        invalid=logs_invalid,
    )
