"""The STS front: GetCallerIdentity, GetSessionToken and AssumeRole over the query protocol.

GetCallerIdentity and GetSessionToken are governed by no policy, as on AWS; AssumeRole is
`sts:AssumeRole` on the role's ARN, and then the role's trust policy (see `StsService`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cargohold.domain.errors import RegistryError
from cargohold.domain.identity import IdentityError
from cargohold.domain.policy import PolicyError
from cargohold.http.aws_auth import SigV4Authenticator
from cargohold.http.awsquery import Authorize, QueryCall, QueryFront, QueryHandler
from cargohold.service.identity import IdentityService
from cargohold.service.sts import Credentials, StsService

SERVICE = "sts"


def _credentials(credentials: Credentials) -> dict[str, Any]:
    return {
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "SessionToken": credentials.session_token,
        "Expiration": credentials.expiration,
    }


def sts_handlers(sts: StsService) -> dict[str, QueryHandler]:
    async def get_caller_identity(call: QueryCall) -> dict[str, Any]:
        who = sts.caller_identity(call.principal)
        return {"UserId": who.user_id, "Account": who.account, "Arn": who.arn}

    async def get_session_token(call: QueryCall) -> dict[str, Any]:
        credentials = await sts.get_session_token(
            call.principal, call.params.get("DurationSeconds")
        )
        return {"Credentials": _credentials(credentials)}

    async def assume_role(call: QueryCall) -> dict[str, Any]:
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


async def _resource_of(call: QueryCall) -> str | None:
    if call.action == "AssumeRole":
        return str(call.params["RoleArn"])
    # GetCallerIdentity and GetSessionToken: "no permissions are required" (AWS).
    return None


def _error_code(exc: RegistryError) -> str | None:
    if isinstance(exc, PolicyError):
        return exc.code
    if isinstance(exc, IdentityError):
        return exc.code
    return None


def build_sts_front(
    identity: IdentityService,
    sts: StsService,
    authorize: Authorize,
    *,
    clock: Callable[[], float],
    handlers: Mapping[str, QueryHandler] | None = None,
) -> QueryFront:
    return QueryFront(
        SERVICE,
        SigV4Authenticator(identity, service=SERVICE, clock=clock),
        authorize,
        sts_handlers(sts) if handlers is None else handlers,
        resource_of=_resource_of,
        error_code=_error_code,
    )
