"""ECR's policy operations: Set/Get/DeleteRepositoryPolicy and Put/Get/DeleteRegistryPolicy.

ECR answers with the policy as it keeps it, re-printed in its own layout (Jackson's default
pretty printer: two-space indents, `"key" : value`, arrays on one line), whatever white space
the caller sent; `ecr_policy_text` reproduces that layout.
"""

from __future__ import annotations

import json
from typing import Any

from cargohold.domain import jsondoc
from cargohold.http.ecr import EcrCall, Handler
from cargohold.service.policies import PolicyService, RegistryPolicy, RepositoryPolicy


def ecr_policy_text(text: str) -> str:
    """A policy document in the layout ECR answers with."""
    try:
        document = jsondoc.loads(text)
    except ValueError:
        return text
    return _render(document, 0)


def _render(value: Any, depth: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{ }"
        inner = "  " * (depth + 1)
        members = [
            f"{inner}{json.dumps(key, ensure_ascii=False)} : {_render(item, depth + 1)}"
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(members) + "\n" + "  " * depth + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        # Arrays do not indent: their objects are indented by the depth of enclosing objects.
        return "[ " + ", ".join(_render(item, depth) for item in value) + " ]"
    return json.dumps(value, ensure_ascii=False)


def _repository(policy: RepositoryPolicy) -> dict[str, Any]:
    return {
        "registryId": policy.registry_id,
        "repositoryName": policy.repository_name,
        "policyText": ecr_policy_text(policy.text),
    }


def _registry(policy: RegistryPolicy) -> dict[str, Any]:
    return {"registryId": policy.registry_id, "policyText": ecr_policy_text(policy.text)}


def ecr_policy_handlers(policies: PolicyService) -> dict[str, Handler]:
    """The ECR operations this module serves, by operation name."""

    async def set_repository_policy(call: EcrCall) -> dict[str, Any]:
        policy = await policies.set_repository_policy(
            call.registry_id,
            call.params["repositoryName"],
            call.params["policyText"],
            force=call.params.get("force", False),
            caller=call.principal,
            context=call.context,
        )
        return _repository(policy)

    async def get_repository_policy(call: EcrCall) -> dict[str, Any]:
        return _repository(
            await policies.get_repository_policy(call.registry_id, call.params["repositoryName"])
        )

    async def delete_repository_policy(call: EcrCall) -> dict[str, Any]:
        return _repository(
            await policies.delete_repository_policy(call.registry_id, call.params["repositoryName"])
        )

    async def put_registry_policy(call: EcrCall) -> dict[str, Any]:
        return _registry(
            await policies.put_registry_policy(call.principal.account_id, call.params["policyText"])
        )

    async def get_registry_policy(call: EcrCall) -> dict[str, Any]:
        return _registry(await policies.get_registry_policy(call.principal.account_id))

    async def delete_registry_policy(call: EcrCall) -> dict[str, Any]:
        return _registry(await policies.delete_registry_policy(call.principal.account_id))

    return {
        "SetRepositoryPolicy": set_repository_policy,
        "GetRepositoryPolicy": get_repository_policy,
        "DeleteRepositoryPolicy": delete_repository_policy,
        "PutRegistryPolicy": put_registry_policy,
        "GetRegistryPolicy": get_registry_policy,
        "DeleteRegistryPolicy": delete_registry_policy,
    }
