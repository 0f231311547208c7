"""The roles a task is given: passing them (`iam:PassRole`), and ECS assuming them.

A caller that names an `executionRoleArn` or `taskRoleArn` passes the role to ECS, which is
`iam:PassRole` on the role with `iam:PassedToService` = `ecs-tasks.amazonaws.com`; and ECS can
use the role only where the role's trust policy lets the service principal
`ecs-tasks.amazonaws.com` assume it. Both are decisions of the one `Authorizer`.
"""

from __future__ import annotations

from cargohold.domain.ecs import ECS_TASKS_PRINCIPAL, ClientError
from cargohold.domain.errors import AccessDenied
from cargohold.domain.principal import Principal, service_principal
from cargohold.service.authz import Authorizer, RequestRecord
from cargohold.service.sts import ASSUME_ROLE, AssumedRole, StsService

PASS_ROLE = "iam:PassRole"  # noqa: S105 (an action, not a secret)
#: The longest a task's role session lasts; the agent renews it before it ends.
TASK_SESSION_SECONDS = 3600


def unable_to_assume(role_arn: str) -> ClientError:
    return ClientError(
        f"ECS was unable to assume the role '{role_arn}' that was provided for this task. "
        "Please verify that the role being passed has the proper trust relationship and "
        "permissions and that your IAM user has permissions to pass this role."
    )


class TaskRoles:
    def __init__(self, authorizer: Authorizer, sts: StsService) -> None:
        self._authorizer = authorizer
        self._sts = sts

    async def check(
        self, principal: Principal, role_arns: list[str], record: RequestRecord | None
    ) -> None:
        """Raises AccessDenied unless the caller may pass each role to ECS, ClientError unless
        ECS may assume it."""
        for role_arn in dict.fromkeys(role_arns):
            decision = await self._authorizer.authorize(
                principal,
                PASS_ROLE,
                role_arn,
                {"iam:PassedToService": ECS_TASKS_PRINCIPAL},
                record=record,
            )
            if not decision.allowed:
                raise AccessDenied(decision.message)
            ecs = service_principal(ECS_TASKS_PRINCIPAL, principal.account_id)
            trusted = await self._authorizer.authorize(ecs, ASSUME_ROLE, role_arn, {})
            if not trusted.allowed:
                raise unable_to_assume(role_arn)

    async def assume(self, account_id: str, role_arn: str, session_name: str) -> AssumedRole:
        """A session of the role, assumed as `ecs-tasks.amazonaws.com` (AccessDenied unless
        its trust policy allows that)."""
        return await self._sts.assume_role(
            service_principal(ECS_TASKS_PRINCIPAL, account_id),
            role_arn,
            session_name,
            duration_seconds=TASK_SESSION_SECONDS,
        )
