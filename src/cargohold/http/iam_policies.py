"""IAM's policy operations on the wire: inline policies of users, groups and roles, managed
policies and their versions, and attachments (`Attach*Policy`, `ListAttached*Policies`,
`ListEntitiesForPolicy`). The operations of the three kinds of entity differ only in their
names (`PutUserPolicy`, `PutGroupPolicy`, `PutRolePolicy`), so they are made once per kind.
"""

from __future__ import annotations

from typing import Any

from cargohold.domain.identity import (
    GROUP,
    ROLE,
    USER,
    Attached,
    EntityKind,
    ManagedPolicy,
    PolicyVersion,
)
from cargohold.http.awsservice import AwsCall, Handler
from cargohold.http.iam import IamServices, page_of
from cargohold.service.managed_policies import validate_policy_arn

#: Each kind of entity as IAM spells it in operation and parameter names.
_KINDS: dict[EntityKind, str] = {USER: "User", GROUP: "Group", ROLE: "Role"}


def policy_shape(policy: ManagedPolicy) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "PolicyName": policy.name,
        "PolicyId": policy.id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": policy.default_version,
        "AttachmentCount": policy.attachment_count,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": policy.created_at,
        "UpdateDate": policy.updated_at,
    }
    if policy.description is not None:
        shape["Description"] = policy.description
    return shape


def version_shape(version: PolicyVersion, *, document: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.is_default,
        "CreateDate": version.created_at,
    }
    if document:
        shape["Document"] = version.document
    return shape


def _policy_key(policy: ManagedPolicy) -> str:
    return f"{policy.name.lower()} {policy.arn}"


def _attached_shape(policy: ManagedPolicy) -> dict[str, Any]:
    return {"PolicyName": policy.name, "PolicyArn": policy.arn}


def _entity_handlers(services: IamServices, kind: EntityKind) -> dict[str, Handler]:
    noun = _KINDS[kind]
    name_param = f"{noun}Name"

    def bound(call: AwsCall) -> IamServices:
        return services.for_account(call.account)

    async def put_policy(call: AwsCall) -> dict[str, Any]:
        params = call.params
        await bound(call).iam.put_inline_policy(
            kind, params[name_param], params["PolicyName"], params["PolicyDocument"]
        )
        return {}

    async def get_policy(call: AwsCall) -> dict[str, Any]:
        params = call.params
        document = await bound(call).iam.get_inline_policy(
            kind, params[name_param], params["PolicyName"]
        )
        return {
            name_param: params[name_param],
            "PolicyName": params["PolicyName"],
            "PolicyDocument": document,
        }

    async def list_policies(call: AwsCall) -> dict[str, Any]:
        names = await bound(call).iam.list_inline_policies(kind, call.params[name_param])
        return page_of(call, names, lambda n: n, "PolicyNames", lambda n: n)

    async def delete_policy(call: AwsCall) -> dict[str, Any]:
        params = call.params
        await bound(call).iam.delete_inline_policy(kind, params[name_param], params["PolicyName"])
        return {}

    async def attach_policy(call: AwsCall) -> dict[str, Any]:
        arn = validate_policy_arn(call.params["PolicyArn"])
        await bound(call).policies.attach(kind, call.params[name_param], arn)
        return {}

    async def detach_policy(call: AwsCall) -> dict[str, Any]:
        arn = validate_policy_arn(call.params["PolicyArn"])
        await bound(call).policies.detach(kind, call.params[name_param], arn)
        return {}

    async def list_attached(call: AwsCall) -> dict[str, Any]:
        found = await bound(call).policies.attached(
            kind, call.params[name_param], path_prefix=call.params.get("PathPrefix", "/")
        )
        return page_of(call, found, _policy_key, "AttachedPolicies", _attached_shape)

    return {
        f"Put{noun}Policy": put_policy,
        f"Get{noun}Policy": get_policy,
        f"List{noun}Policies": list_policies,
        f"Delete{noun}Policy": delete_policy,
        f"Attach{noun}Policy": attach_policy,
        f"Detach{noun}Policy": detach_policy,
        f"ListAttached{noun}Policies": list_attached,
    }


def _entities_shape(attached: Attached, wanted: str | None, prefix: str) -> dict[str, Any]:
    """ListEntitiesForPolicy's answer: the users, groups and roles a policy is attached to."""
    result: dict[str, Any] = {"IsTruncated": False}
    if wanted in (None, "User"):
        result["PolicyUsers"] = [
            {"UserName": u.name, "UserId": u.id}
            for u in attached.users
            if u.path.startswith(prefix)
        ]
    if wanted in (None, "Group"):
        result["PolicyGroups"] = [
            {"GroupName": g.name, "GroupId": g.id}
            for g in attached.groups
            if g.path.startswith(prefix)
        ]
    if wanted in (None, "Role"):
        result["PolicyRoles"] = [
            {"RoleName": r.name, "RoleId": r.id}
            for r in attached.roles
            if r.path.startswith(prefix)
        ]
    return result


def _arn_of(call: AwsCall) -> str:
    return validate_policy_arn(call.params["PolicyArn"])


def _managed_handlers(services: IamServices) -> dict[str, Handler]:
    """Managed policies."""

    def bound(call: AwsCall) -> IamServices:
        return services.for_account(call.account)

    async def create_policy(call: AwsCall) -> dict[str, Any]:
        params = call.params
        policy = await bound(call).policies.create_policy(
            params["PolicyName"],
            params["PolicyDocument"],
            path=params.get("Path", "/"),
            description=params.get("Description"),
        )
        return {"Policy": policy_shape(policy)}

    async def get_policy(call: AwsCall) -> dict[str, Any]:
        return {"Policy": policy_shape(await bound(call).policies.get_policy(_arn_of(call)))}

    async def list_policies(call: AwsCall) -> dict[str, Any]:
        params = call.params
        found = await bound(call).policies.list_policies(
            scope=params.get("Scope", "All"),
            only_attached=bool(params.get("OnlyAttached", False)),
            path_prefix=params.get("PathPrefix", "/"),
        )
        return page_of(call, found, _policy_key, "Policies", policy_shape)

    async def delete_policy(call: AwsCall) -> dict[str, Any]:
        await bound(call).policies.delete_policy(_arn_of(call))
        return {}

    async def list_entities_for_policy(call: AwsCall) -> dict[str, Any]:
        attached = await bound(call).policies.entities_for(_arn_of(call))
        return _entities_shape(
            attached, call.params.get("EntityFilter"), call.params.get("PathPrefix", "/")
        )

    return {
        "CreatePolicy": create_policy,
        "GetPolicy": get_policy,
        "ListPolicies": list_policies,
        "DeletePolicy": delete_policy,
        "ListEntitiesForPolicy": list_entities_for_policy,
    }


def _version_handlers(services: IamServices) -> dict[str, Handler]:
    """The versions of managed policies."""

    def bound(call: AwsCall) -> IamServices:
        return services.for_account(call.account)

    async def create_policy_version(call: AwsCall) -> dict[str, Any]:
        version = await bound(call).policies.create_version(
            _arn_of(call),
            call.params["PolicyDocument"],
            set_default=bool(call.params.get("SetAsDefault", False)),
        )
        return {"PolicyVersion": version_shape(version, document=False)}

    async def get_policy_version(call: AwsCall) -> dict[str, Any]:
        version = await bound(call).policies.get_version(_arn_of(call), call.params["VersionId"])
        return {"PolicyVersion": version_shape(version, document=True)}

    async def list_policy_versions(call: AwsCall) -> dict[str, Any]:
        versions = await bound(call).policies.list_versions(_arn_of(call))
        return page_of(
            call,
            versions,
            lambda v: f"{int(v.version_id.removeprefix('v')):08d}",
            "Versions",
            lambda v: version_shape(v, document=False),
        )

    async def delete_policy_version(call: AwsCall) -> dict[str, Any]:
        await bound(call).policies.delete_version(_arn_of(call), call.params["VersionId"])
        return {}

    async def set_default_policy_version(call: AwsCall) -> dict[str, Any]:
        await bound(call).policies.set_default_version(_arn_of(call), call.params["VersionId"])
        return {}

    return {
        "CreatePolicyVersion": create_policy_version,
        "GetPolicyVersion": get_policy_version,
        "ListPolicyVersions": list_policy_versions,
        "DeletePolicyVersion": delete_policy_version,
        "SetDefaultPolicyVersion": set_default_policy_version,
    }


def policy_handlers(services: IamServices) -> dict[str, Handler]:
    handlers = {**_managed_handlers(services), **_version_handlers(services)}
    for kind in (USER, GROUP, ROLE):
        handlers.update(_entity_handlers(services, kind))
    return handlers
