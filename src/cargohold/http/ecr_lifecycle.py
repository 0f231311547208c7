"""ECR lifecycle policy operations on the wire: Put/Get/DeleteLifecyclePolicy and
Start/GetLifecyclePolicyPreview over `LifecycleService`; and the pull-time update exclusions
over `PullTimes`."""

from __future__ import annotations

from typing import Any

from cargohold.domain.errors import InvalidParameter
from cargohold.domain.records import Repository
from cargohold.http.ecr import EcrCall, Handler
from cargohold.service.archive import ArchiveService
from cargohold.service.content import ContentService
from cargohold.service.image_ids import ImageId
from cargohold.service.lifecycle import LifecycleService
from cargohold.service.pull_times import MAX_EXCLUSIONS, PullTimes
from cargohold.service.tokens import decode_token, encode_token


def _named(repository: Repository) -> dict[str, Any]:
    return {"registryId": repository.registry_id, "repositoryName": repository.name}


class _LifecycleHandlers:
    def __init__(self, lifecycle: LifecycleService, content: ContentService) -> None:
        self._lifecycle = lifecycle
        self._content = content

    async def _repository(self, call: EcrCall) -> Repository:
        return await self._content.repository(call.params["repositoryName"], call.registry_id)

    async def put(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        text = await self._lifecycle.put_policy(repository, call.params["lifecyclePolicyText"])
        return {**_named(repository), "lifecyclePolicyText": text}

    async def get(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        stored = await self._lifecycle.get_policy(repository)
        shaped = {**_named(repository), "lifecyclePolicyText": stored.text}
        if stored.last_evaluated_at is not None:
            shaped["lastEvaluatedAt"] = stored.last_evaluated_at
        return shaped

    async def delete(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        stored = await self._lifecycle.delete_policy(repository)
        shaped = {**_named(repository), "lifecyclePolicyText": stored.text}
        if stored.last_evaluated_at is not None:
            shaped["lastEvaluatedAt"] = stored.last_evaluated_at
        return shaped

    async def start_preview(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        text = await self._lifecycle.start_preview(
            repository, call.params.get("lifecyclePolicyText")
        )
        return {**_named(repository), "lifecyclePolicyText": text, "status": "IN_PROGRESS"}

    async def get_preview(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._repository(call)
        ids = [
            ImageId(v.get("imageDigest"), v.get("imageTag"))
            for v in call.params.get("imageIds") or ()
        ]
        page = await self._lifecycle.preview_page(
            repository,
            image_ids=ids,
            tag_status=(call.params.get("filter") or {}).get("tagStatus"),
            max_results=call.params.get("maxResults"),
            next_token=call.params.get("nextToken"),
        )
        shaped: dict[str, Any] = {
            **_named(repository),
            "lifecyclePolicyText": page.preview.text,
            "status": page.preview.status,
            "previewResults": page.results,
        }
        if page.next_token is not None:
            shaped["nextToken"] = page.next_token
        if page.summary is not None:
            shaped["summary"] = page.summary
        return shaped


class _ArchiveHandlers:
    def __init__(self, archive: ArchiveService, content: ContentService) -> None:
        self._archive = archive
        self._content = content

    async def update_storage_class(self, call: EcrCall) -> dict[str, Any]:
        repository = await self._content.repository(call.params["repositoryName"], call.registry_id)
        given = call.params["imageId"]
        image_id = ImageId(given.get("imageDigest"), given.get("imageTag"))
        manifest, status = await self._archive.update_storage_class(
            repository, image_id, call.params["targetStorageClass"]
        )
        shown: dict[str, str] = {"imageDigest": manifest.digest}
        if image_id.tag is not None:
            shown["imageTag"] = image_id.tag
        return {**_named(repository), "imageId": shown, "imageStatus": status}


def archive_handlers(archive: ArchiveService, content: ContentService) -> dict[str, Handler]:
    """UpdateImageStorageClass."""
    return {"UpdateImageStorageClass": _ArchiveHandlers(archive, content).update_storage_class}


class _ExclusionHandlers:
    def __init__(self, pull_times: PullTimes) -> None:
        self._pull_times = pull_times

    async def register(self, call: EcrCall) -> dict[str, Any]:
        found = await self._pull_times.register_exclusion(
            call.registry_id, call.params["principalArn"]
        )
        return {"principalArn": found.principal_arn, "createdAt": found.created_at}

    async def deregister(self, call: EcrCall) -> dict[str, Any]:
        arn = await self._pull_times.deregister_exclusion(
            call.registry_id, call.params["principalArn"]
        )
        return {"principalArn": arn}

    async def list(self, call: EcrCall) -> dict[str, Any]:
        found = [e.principal_arn for e in await self._pull_times.exclusions(call.registry_id)]
        offset = 0
        token = call.params.get("nextToken")
        if token is not None:
            key = decode_token(token, "ListPullTimeUpdateExclusions", 0)
            if len(key) != 1 or not isinstance(key[0], int):
                raise InvalidParameter(
                    "Invalid parameter at 'nextToken' failed to satisfy constraint: "
                    "'Invalid NextToken'"
                )
            offset = key[0]
        limit = call.params.get("maxResults") or MAX_EXCLUSIONS
        shaped: dict[str, Any] = {"pullTimeUpdateExclusions": found[offset : offset + limit]}
        if offset + limit < len(found):
            shaped["nextToken"] = encode_token("ListPullTimeUpdateExclusions", 0, [offset + limit])
        return shaped


def exclusion_handlers(pull_times: PullTimes) -> dict[str, Handler]:
    """The ECR pull-time update exclusion operations, keyed by operation name."""
    handlers = _ExclusionHandlers(pull_times)
    return {
        "RegisterPullTimeUpdateExclusion": handlers.register,
        "DeregisterPullTimeUpdateExclusion": handlers.deregister,
        "ListPullTimeUpdateExclusions": handlers.list,
    }


def lifecycle_handlers(lifecycle: LifecycleService, content: ContentService) -> dict[str, Handler]:
    """The ECR lifecycle policy operations, keyed by operation name."""
    handlers = _LifecycleHandlers(lifecycle, content)
    return {
        "PutLifecyclePolicy": handlers.put,
        "GetLifecyclePolicy": handlers.get,
        "DeleteLifecyclePolicy": handlers.delete,
        "StartLifecyclePolicyPreview": handlers.start_preview,
        "GetLifecyclePolicyPreview": handlers.get_preview,
    }
