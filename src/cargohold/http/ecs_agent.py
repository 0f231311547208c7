"""What ECS tells its agents beyond the public API: `POST /_ecs/credentials`.

On AWS the agent receives a task's role credentials from ECS's own channel, ECS having assumed
the roles as `ecs-tasks.amazonaws.com`. Here an agent asks for them with a SigV4-signed JSON
request (scope `ecs`), authorized as `ecs:Poll` on its container instance, as the instance
role's policy (`AmazonEC2ContainerServiceforEC2Role`) grants it:

    {"cluster": "…", "containerInstance": "ARN", "task": "ARN", "role": "execution" | "task"}

and gets the session as ECS's credentials endpoint shapes it: `RoleArn`, `AccessKeyId`,
`SecretAccessKey`, `Token`, `Expiration` (ISO 8601). Only a task placed on that instance and
not yet stopped gets them.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from cargohold.auth.errors import AuthError
from cargohold.domain.ecs import EcsError, cluster_name, container_instance_arn, resource_id
from cargohold.domain.errors import AccessDenied
from cargohold.http.awsfront import Authenticator, read_body
from cargohold.service.authz import Enforce
from cargohold.service.ecs_tasks import TaskCredentials

log = logging.getLogger(__name__)

PATH = "/_ecs/credentials"
_MAX_BODY = 16384


def _error(code: str, message: str, status: int) -> Response:
    return JSONResponse({"__type": code, "message": message}, status_code=status)


class EcsAgentRoute:
    def __init__(
        self,
        credentials: TaskCredentials,
        authenticator: Authenticator,
        authorize: Enforce,
        *,
        region: str,
    ) -> None:
        self._credentials = credentials
        self._authenticator = authenticator
        self._authorize = authorize
        self._region = region

    async def __call__(self, request: Request) -> Response:
        if request.method != "POST":
            return _error("UnsupportedOperation", "POST only", 405)
        try:
            body = await read_body(request, _MAX_BODY)
            if body is None:
                return _error("InvalidParameterException", "request too large", 413)
            principal = await self._authenticator.authenticate(request, body, service="ecs")
            asked = json.loads(body)
            if not isinstance(asked, dict):
                raise ValueError("not an object")
            return await self._answer(principal, asked)
        except AuthError as exc:
            return _error(exc.aws_type, exc.message, exc.http_status)
        except AccessDenied as exc:
            return _error("AccessDeniedException", exc.message, 400)
        except EcsError as exc:
            return _error(exc.code, str(exc), 400)
        except (ValueError, KeyError, TypeError):
            return _error("InvalidParameterException", "a malformed request", 400)
        except ClientDisconnect:
            return Response(status_code=400)

    async def _answer(self, principal: Any, asked: dict[str, Any]) -> Response:
        cluster = cluster_name(str(asked["cluster"]))
        instance = resource_id(str(asked["containerInstance"]), "container-instance")
        task = resource_id(str(asked["task"]), "task")
        which = asked["role"]
        if which not in ("execution", "task"):
            raise ValueError("role")
        account = principal.account_id
        arn = container_instance_arn(self._region, account, cluster, instance)
        await self._authorize(principal, "ecs:Poll", arn, {"ecs:cluster": cluster})
        role_arn, session = await self._credentials.assume(account, cluster, instance, task, which)
        credentials = session.credentials
        expiration = datetime.fromtimestamp(credentials.expiration, UTC)
        return JSONResponse(
            {
                "RoleArn": role_arn,
                "AccessKeyId": credentials.access_key_id,
                "SecretAccessKey": credentials.secret_access_key,
                "Token": credentials.session_token,
                "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            headers={"Cache-Control": "no-store"},
        )
