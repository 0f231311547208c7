"""The Amazon ECR API as `cargohold.http.awsfront` serves it: AWS JSON 1.1, by `X-Amz-Target`.

Each call is authorized as `ecr:<Operation>` on the repositories it names (with the request's
condition keys, and the tags a call sets as `aws:RequestTag/…` and `aws:TagKeys`), and handed to
one operation handler (`ecr_repositories`, `ecr_images`, `ecr_scanning`, `ecr_policies`,
`ecr_tokens`). Handlers are thin: they call the service layer and shape its answer for the wire.
Timestamps go out as epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cargohold.domain.policy import request_tag_context
from cargohold.domain.principal import repository_arn
from cargohold.http.awsservice import AwsCall, AwsService
from cargohold.http.awsservice import Handler as Handler
from cargohold.http.ecr_errors import ecr_error, ecr_invalid

SERVICE = "ecr"

#: One ECR call, as handlers see it.
EcrCall = AwsCall

#: Request members CloudTrail leaves out of `requestParameters`: layer bytes.
_UNRECORDED = frozenset({"layerPartBlob"})
#: Longer strings are cut in the audit log (a manifest can be 4 MiB).
_RECORDED_TEXT = 10240
#: Operations whose `repositoryNames` are each a resource the call acts on.
_MULTI_REPOSITORY = frozenset({"DescribeRepositories", "BatchGetRepositoryScanningConfiguration"})
_TAGGING = frozenset({"TagResource", "UntagResource", "ListTagsForResource"})


def tag_context(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The condition keys of the tags a call sets or removes."""
    if operation in ("CreateRepository", "TagResource"):
        tags = {t.get("Key", ""): t.get("Value", "") for t in params.get("tags") or []}
        if tags or operation == "TagResource":
            return dict(request_tag_context(tags))
    elif operation == "UntagResource":
        return {"aws:TagKeys": tuple(params.get("tagKeys") or [])}
    return {}


def recorded_parameters(value: Any) -> Any:
    """Request parameters as the audit log keeps them: JSON values, layer bytes left out."""
    if isinstance(value, Mapping):
        return {
            key: recorded_parameters(item) for key, item in value.items() if key not in _UNRECORDED
        }
    if isinstance(value, list | tuple):
        return [recorded_parameters(item) for item in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and len(value) > _RECORDED_TEXT:
        return value[:_RECORDED_TEXT] + "…"
    return value


def resources(call: AwsCall) -> list[str]:
    """The resources an operation acts on, as IAM policies name them; each must be allowed.
    Operations that name several repositories act on each of them."""

    def arn(name: str) -> str:
        return repository_arn(call.region, call.registry_id, name)

    if call.operation in _TAGGING:
        return [str(call.params.get("resourceArn", "*"))]
    name = call.params.get("repositoryName")
    if name:
        return [arn(name)]
    names = call.params.get("repositoryNames")
    if names and call.operation in _MULTI_REPOSITORY:
        return [arn(n) for n in dict.fromkeys(names)]
    if call.operation == "DescribeRepositories":
        return [arn("*")]
    # Account-level operations (GetAuthorizationToken, DescribeRegistry, settings,
    # templates, the registry policy) name no resource; IAM policies grant them on "*".
    return ["*"]


async def _resources(call: AwsCall) -> Sequence[str]:
    return resources(call)


def ecr_service(handlers: Mapping[str, Handler]) -> AwsService:
    """ECR with these handlers; the model's other operations answer
    UnsupportedOperationException."""
    return AwsService(
        SERVICE,
        handlers,
        resources=_resources,
        context=tag_context,
        errors=ecr_error,
        invalid=ecr_invalid,
        recorded=recorded_parameters,
    )
