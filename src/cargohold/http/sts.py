"""STS as `cargohold.http.awsfront` serves it: GetCallerIdentity, GetSessionToken and
AssumeRole over the query protocol.

GetCallerIdentity and GetSessionToken are governed by no policy, as on AWS. AssumeRole is
`sts:AssumeRole` on the role's ARN, decided by the role's trust policy with the caller's
policies: `StsService.assume_role` asks the authorizer, with the keys STS defines from the
call's parameters (`sts:ExternalId`, `sts:RoleSessionName`, `sts:SourceIdentity`) beside the
request's own, so the front does not authorize it a second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cargohold.http.awsservice import AwsCall, AwsService, Handler, ungoverned
from cargohold.service.sts import Credentials, StsService

SERVICE = "sts"
_ASSUME_ROLE_KEYS = {
    "sts:RoleSessionName": "RoleSessionName",
    "sts:ExternalId": "ExternalId",
    "sts:SourceIdentity": "SourceIdentity",
}


def _credentials(credentials: Credentials) -> dict[str, Any]:
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "SessionToken": credentials.session_token,
        "Expiration": credentials.expiration,
    }


def sts_handlers(sts: StsService) -> dict[str, Handler]:
    async def get_caller_identity(call: AwsCall) -> dict[str, Any]:
        who = sts.caller_identity(call.principal)
        return {"UserId": who.user_id, "Account": who.account, "Arn": who.arn}

    async def get_session_token(call: AwsCall) -> dict[str, Any]:
        credentials = await sts.get_session_token(
            call.principal, call.params.get("DurationSeconds")
        )
        return {"Credentials": _credentials(credentials)}

    async def assume_role(call: AwsCall) -> dict[str, Any]:
        params = call.params
        assumed = await sts.assume_role(
            call.principal,
            params["RoleArn"],
            params["RoleSessionName"],
            duration_seconds=params.get("DurationSeconds"),
            policy=params.get("Policy"),
            policy_arns=tuple(
                item["arn"] for item in params.get("PolicyArns", []) if "arn" in item
            ),
            context=call.context,
            external_id=params.get("ExternalId"),
            source_identity=params.get("SourceIdentity"),
            record=call.record,
        )
        result: dict[str, Any] = {
            "Credentials": _credentials(assumed.credentials),
            "AssumedRoleUser": {"AssumedRoleId": assumed.assumed_role_id, "Arn": assumed.arn},
        }
        if assumed.packed_policy_size is not None:
            result["PackedPolicySize"] = assumed.packed_policy_size
        if assumed.source_identity is not None:
            result["SourceIdentity"] = assumed.source_identity
        return result

    return {
        "GetCallerIdentity": get_caller_identity,
        "GetSessionToken": get_session_token,
        "AssumeRole": assume_role,
    }


def sts_context(operation: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The keys STS defines from AssumeRole's parameters, which a trust policy may ask for."""
    if operation != "AssumeRole":
        return {}
    return {
        key: value
        for key, member in _ASSUME_ROLE_KEYS.items()
        if isinstance(value := params.get(member), str)
    }


def sts_service(handlers: Mapping[str, Handler]) -> AwsService:
    """STS with these handlers (`sts_handlers`). GetCallerIdentity and GetSessionToken: "no
    permissions are required" (AWS); AssumeRole is decided by `StsService.assume_role`."""
    return AwsService(SERVICE, handlers, resources=ungoverned, context=sts_context)
