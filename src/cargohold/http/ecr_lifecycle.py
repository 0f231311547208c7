"""ECR lifecycle policy operations on the wire: Put/Get/DeleteLifecyclePolicy and
Start/GetLifecyclePolicyPreview over `LifecycleService`."""

from __future__ import annotations

from typing import Any

from cargohold.domain.records import Repository
from cargohold.http.ecr import EcrCall, Handler
from cargohold.service.content import ContentService
from cargohold.service.image_ids import ImageId
from cargohold.service.lifecycle import LifecycleService


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
