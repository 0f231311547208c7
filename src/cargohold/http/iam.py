"""IAM as `cargohold.http.awsfront` serves it: users, access keys, groups and roles over the
query protocol, and which resource each action acts on. Policy operations (inline and managed,
attachments) are in `cargohold.http.iam_policies`.

Every call acts on the caller's own account, and is authorized as `iam:<Action>` on the ARN of
the user, group, role or policy it names (with its path, when the entity exists), or on
`arn:aws:iam::ACCOUNT:user/` and the like for listings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.auth.errors import UnrecognizedClient
from cargohold.domain.identity import (
    GROUP,
    ROLE,
    USER,
    AccessKey,
    EntityKind,
    Group,
    Identity,
    IdentityError,
    InvalidInput,
    Role,
    group_arn,
    policy_arn,
    role_arn,
    user_arn,
)
from cargohold.domain.principal import USER_PRINCIPAL
from cargohold.http.awsservice import AwsCall, AwsError, AwsService, Handler
from cargohold.service.credentials import no_such_key
from cargohold.service.iam import IamService, paginate
from cargohold.service.identity_admin import IdentityAdmin
from cargohold.service.managed_policies import ManagedPolicyService, validate_policy_arn

SERVICE = "iam"


@dataclass(frozen=True, slots=True)
class IamServices:
    """The services an IAM call uses, bound to the caller's account."""

    identity: IdentityAdmin
    iam: IamService
    policies: ManagedPolicyService

    def for_account(self, account_id: str) -> IamServices:
        return IamServices(
            self.identity.for_account(account_id),
            self.iam.for_account(account_id),
            self.policies.for_account(account_id),
        )


# -- wire shapes ---------------------------------------------------------------------------


def user_shape(user: Identity) -> dict[str, Any]:
    return {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.id,
        "Arn": user.arn,
        "CreateDate": user.created_at,
    }


def group_shape(group: Group) -> dict[str, Any]:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.id,
        "Arn": group.arn,
        "CreateDate": group.created_at,
    }


def role_shape(role: Role) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.id,
        "Arn": role.arn,
        "CreateDate": role.created_at,
        "AssumeRolePolicyDocument": role.trust_policy,
        "MaxSessionDuration": role.max_session_duration,
    }
    if role.description is not None:
        shape["Description"] = role.description
    return shape


def key_shape(key: AccessKey) -> dict[str, Any]:
    return {
        "UserName": key.user_name,
        "AccessKeyId": key.id,
        "Status": key.status,
        "CreateDate": key.created_at,
    }


def page_of(
    call: AwsCall, items: list[Any], key: Callable[[Any], str], name: str, shape: Any
) -> dict[str, Any]:
    """A listing with IAM's Marker/MaxItems paging: `{name: [...], IsTruncated, Marker}`."""
    page, marker = paginate(items, key, call.params.get("Marker"), call.params.get("MaxItems"))
    result: dict[str, Any] = {name: [shape(item) for item in page], "IsTruncated": bool(marker)}
    if marker:
        result["Marker"] = marker
    return result


def caller_user_name(call: AwsCall) -> str:
    """`UserName`, or the calling user's own name where IAM lets it be left out."""
    name = call.params.get("UserName")
    if name:
        return str(name)
    if call.principal.kind != USER_PRINCIPAL or call.principal.username is None:
        raise InvalidInput("Must specify userName when calling with non-User credentials")
    return call.principal.username


def _unsupported(call: AwsCall, *names: str) -> None:
    for name in names:
        if call.params.get(name):
            raise AwsError("InvalidInput", f"{name} is not supported by this registry.", status=400)


# -- handlers ------------------------------------------------------------------------------


def _user_handlers(services: IamServices) -> dict[str, Handler]:
    """Users."""

    def bound(call: AwsCall) -> IamServices:
        return services.for_account(call.account)

    async def create_user(call: AwsCall) -> dict[str, Any]:
        _unsupported(call, "PermissionsBoundary")
        user = await bound(call).identity.create_user(
            call.params["UserName"], path=call.params.get("Path", "/")
        )
        return {"User": user_shape(user)}

    async def get_user(call: AwsCall) -> dict[str, Any]:
        return {"User": user_shape(await bound(call).identity.get_user(caller_user_name(call)))}

    async def list_users(call: AwsCall) -> dict[str, Any]:
        prefix = call.params.get("PathPrefix", "/")
        users = [u for u in await bound(call).identity.list_users() if u.path.startswith(prefix)]
        return page_of(call, users, lambda u: u.name.lower(), "Users", user_shape)

    async def delete_user(call: AwsCall) -> dict[str, Any]:
        await bound(call).identity.delete_user(call.params["UserName"])
        return {}

    return {
        "CreateUser": create_user,
        "GetUser": get_user,
        "ListUsers": list_users,
        "DeleteUser": delete_user,
    }


def _access_key_handlers(services: IamServices) -> dict[str, Handler]:
    """Access keys of users."""

    def bound(call: AwsCall) -> IamServices:
        return services.for_account(call.account)

    async def create_access_key(call: AwsCall) -> dict[str, Any]:
        created = await bound(call).identity.create_access_key(caller_user_name(call))
        return {"AccessKey": {**key_shape(created.key), "SecretAccessKey": created.secret}}

    async def list_access_keys(call: AwsCall) -> dict[str, Any]:
        keys = await bound(call).identity.list_access_keys(caller_user_name(call))
        return page_of(call, keys, lambda k: k.id, "AccessKeyMetadata", key_shape)

    async def _owned_key(call: AwsCall) -> str:
        """The key id, checked to belong to the user the call names (or the caller)."""
        key_id = str(call.params["AccessKeyId"])
        key = await bound(call).identity.get_access_key(key_id)
        if key.user_name.lower() != caller_user_name(call).lower():
            raise no_such_key(key_id)
        return key_id

    async def update_access_key(call: AwsCall) -> dict[str, Any]:
        key_id = await _owned_key(call)
        await bound(call).identity.set_access_key_status(key_id, call.params["Status"])
        return {}

    async def delete_access_key(call: AwsCall) -> dict[str, Any]:
        await bound(call).identity.delete_access_key(await _owned_key(call))
        return {}

    async def get_access_key_last_used(call: AwsCall) -> dict[str, Any]:
        key = await bound(call).identity.get_access_key(call.params["AccessKeyId"])
        last: dict[str, Any] = {"ServiceName": "N/A", "Region": "N/A"}
        if key.last_used_at is not None:
            last = {
                "LastUsedDate": key.last_used_at,
                "ServiceName": key.last_used_service or "N/A",
                "Region": key.last_used_region or "N/A",
            }
        return {"UserName": key.user_name, "AccessKeyLastUsed": last}

    return {
        "CreateAccessKey": create_access_key,
        "ListAccessKeys": list_access_keys,
        "UpdateAccessKey": update_access_key,
        "DeleteAccessKey": delete_access_key,
        "GetAccessKeyLastUsed": get_access_key_last_used,
    }


def _group_handlers(services: IamServices) -> dict[str, Handler]:
    """Groups and their members."""

    def bound(call: AwsCall) -> IamServices:
        return services.for_account(call.account)

    async def create_group(call: AwsCall) -> dict[str, Any]:
        group = await bound(call).iam.create_group(
            call.params["GroupName"], path=call.params.get("Path", "/")
        )
        return {"Group": group_shape(group)}

    async def get_group(call: AwsCall) -> dict[str, Any]:
        detail = await bound(call).iam.get_group(call.params["GroupName"])
        result = page_of(call, detail.users, lambda u: u.name.lower(), "Users", user_shape)
        return {"Group": group_shape(detail.group), **result}

    async def list_groups(call: AwsCall) -> dict[str, Any]:
        groups = await bound(call).iam.list_groups(call.params.get("PathPrefix", "/"))
        return page_of(call, groups, lambda g: g.name.lower(), "Groups", group_shape)

    async def delete_group(call: AwsCall) -> dict[str, Any]:
        await bound(call).iam.delete_group(call.params["GroupName"])
        return {}

    async def add_user_to_group(call: AwsCall) -> dict[str, Any]:
        await bound(call).iam.add_user_to_group(call.params["GroupName"], call.params["UserName"])
        return {}

    async def remove_user_from_group(call: AwsCall) -> dict[str, Any]:
        await bound(call).iam.remove_user_from_group(
            call.params["GroupName"], call.params["UserName"]
        )
        return {}

    async def list_groups_for_user(call: AwsCall) -> dict[str, Any]:
        groups = await bound(call).iam.groups_for_user(call.params["UserName"])
        return page_of(call, groups, lambda g: g.name.lower(), "Groups", group_shape)

    return {
        "CreateGroup": create_group,
        "GetGroup": get_group,
        "ListGroups": list_groups,
        "DeleteGroup": delete_group,
        "AddUserToGroup": add_user_to_group,
        "RemoveUserFromGroup": remove_user_from_group,
        "ListGroupsForUser": list_groups_for_user,
    }


def _role_handlers(services: IamServices) -> dict[str, Handler]:
    """Roles."""

    def bound(call: AwsCall) -> IamServices:
        return services.for_account(call.account)

    async def create_role(call: AwsCall) -> dict[str, Any]:
        _unsupported(call, "PermissionsBoundary")
        params = call.params
        role = await bound(call).iam.create_role(
            params["RoleName"],
            params["AssumeRolePolicyDocument"],
            path=params.get("Path", "/"),
            description=params.get("Description"),
            max_session_duration=params.get("MaxSessionDuration"),
        )
        return {"Role": role_shape(role)}

    async def get_role(call: AwsCall) -> dict[str, Any]:
        return {"Role": role_shape(await bound(call).iam.get_role(call.params["RoleName"]))}

    async def list_roles(call: AwsCall) -> dict[str, Any]:
        roles = await bound(call).iam.list_roles(call.params.get("PathPrefix", "/"))
        return page_of(call, roles, lambda r: r.name.lower(), "Roles", role_shape)

    async def delete_role(call: AwsCall) -> dict[str, Any]:
        await bound(call).iam.delete_role(call.params["RoleName"])
        return {}

    async def update_role(call: AwsCall) -> dict[str, Any]:
        await bound(call).iam.update_role(
            call.params["RoleName"],
            description=call.params.get("Description"),
            max_session_duration=call.params.get("MaxSessionDuration"),
        )
        return {}

    async def update_role_description(call: AwsCall) -> dict[str, Any]:
        role = await bound(call).iam.update_role(
            call.params["RoleName"], description=call.params["Description"]
        )
        return {"Role": role_shape(role)}

    async def update_assume_role_policy(call: AwsCall) -> dict[str, Any]:
        await bound(call).iam.update_trust_policy(
            call.params["RoleName"], call.params["PolicyDocument"]
        )
        return {}

    return {
        "CreateRole": create_role,
        "GetRole": get_role,
        "ListRoles": list_roles,
        "DeleteRole": delete_role,
        "UpdateRole": update_role,
        "UpdateRoleDescription": update_role_description,
        "UpdateAssumeRolePolicy": update_assume_role_policy,
    }


def entity_handlers(services: IamServices) -> dict[str, Handler]:
    """Users, access keys, groups, roles."""
    return {
        **_user_handlers(services),
        **_access_key_handlers(services),
        **_group_handlers(services),
        **_role_handlers(services),
    }


# -- the front -----------------------------------------------------------------------------

_LISTINGS: dict[str, str] = {
    "ListUsers": "user",
    "ListGroups": "group",
    "ListRoles": "role",
    "ListPolicies": "policy",
}
#: Operations on the caller's own keys or user when `UserName` is left out.
_SELF_SERVICE = frozenset(
    {"GetUser", "CreateAccessKey", "ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey"}
)
_ARN_OF: dict[EntityKind, Callable[[str, str, str], str]] = {
    USER: user_arn,
    GROUP: group_arn,
    ROLE: role_arn,
}


def resource_resolver(services: IamServices) -> Callable[[AwsCall], Awaitable[str]]:
    """The ARN `iam:<Action>` acts on, as IAM's authorization names it."""

    async def entity_arn(call: AwsCall, kind: EntityKind, name: str) -> str:
        found = await services.iam.for_account(call.account).entity_arn(kind, name)
        return found or _ARN_OF[kind](call.account, name, call.params.get("Path", "/"))

    async def resource_of(call: AwsCall) -> str:
        params = call.params
        if "GroupName" in params:
            return await entity_arn(call, GROUP, params["GroupName"])
        if "RoleName" in params:
            return await entity_arn(call, ROLE, params["RoleName"])
        if "UserName" in params:
            return await entity_arn(call, USER, params["UserName"])
        if "PolicyArn" in params:
            return validate_policy_arn(params["PolicyArn"])
        if call.action == "CreatePolicy":
            return policy_arn(call.account, params["PolicyName"], params.get("Path", "/"))
        if call.action in _LISTINGS:
            prefix = params.get("PathPrefix", "/")
            return f"arn:aws:iam::{call.account}:{_LISTINGS[call.action]}{prefix}"
        if call.action in _SELF_SERVICE and call.principal.kind == USER_PRINCIPAL:
            return call.principal.arn
        if call.action == "GetAccessKeyLastUsed":
            try:
                key = await services.identity.for_account(call.account).get_access_key(
                    params["AccessKeyId"]
                )
            except IdentityError:
                return "*"
            return await entity_arn(call, USER, key.user_name)
        return "*"

    return resource_of


def _check_caller(call: AwsCall) -> None:
    """Credentials from GetSessionToken (without MFA) cannot call IAM, as on AWS."""
    if call.principal.temporary and call.principal.kind == USER_PRINCIPAL:
        raise UnrecognizedClient()


def iam_service(services: IamServices, handlers: Mapping[str, Handler]) -> AwsService:
    """IAM with these handlers (`entity_handlers`, `iam_policies.policy_handlers`)."""
    resource_of = resource_resolver(services)

    async def resources(call: AwsCall) -> Sequence[str]:
        return (await resource_of(call),)

    return AwsService(SERVICE, handlers, resources=resources, check_caller=_check_caller)
