"""The roles a task is given: passing them (`iam:PassRole`), and ECS assuming them.

A caller that names an `executionRoleArn` or `taskRoleArn` passes the role to ECS, which is
`iam:PassRole` on the role with `iam:PassedToService` = `ecs-tasks.amazonaws.com`; and ECS can
use the role only where the role's trust policy lets the service principal
`ecs-tasks.amazonaws.com` assume it. Both are decisions of the one `Authorizer`.

ECS assumes a role on behalf of a resource of one account, and says so in the request's
`aws:SourceAccount` (that account) and `aws:SourceArn` (the resource) keys, which is what a trust
policy's confused-deputy conditions test (`"ArnLike": {"aws:SourceArn":
"arn:aws:ecs:REGION:ACCOUNT:*"}`). The resource is the task when a task's role is assumed; the
early trust check names the task definition (RegisterTaskDefinition) or the cluster (RunTask),
both in the same account's `arn:aws:ecs:` space.
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


def source_context(account_id: str, source_arn: str) -> dict[str, str]:
    """The condition keys of a request ECS makes on behalf of `source_arn` in `account_id`."""
    return {"aws:SourceAccount": account_id, "aws:SourceArn": source_arn}


class TaskRoles:
    def __init__(self, authorizer: Authorizer, sts: StsService) -> None:
        self._authorizer = authorizer
        self._sts = sts

    async def check(
        self,
        principal: Principal,
        role_arns: list[str],
        record: RequestRecord | None,
        *,
        source_arn: str,
    ) -> None:
        """Raises AccessDenied unless the caller may pass each role to ECS, ClientError unless
        ECS may assume it on behalf of `source_arn`."""
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
            context = source_context(principal.account_id, source_arn)
            trusted = await self._authorizer.authorize(ecs, ASSUME_ROLE, role_arn, context)
            if not trusted.allowed:
                raise unable_to_assume(role_arn)

    async def assume(
        self, account_id: str, role_arn: str, session_name: str, *, source_arn: str
    ) -> AssumedRole:
        """A session of the role, assumed as `ecs-tasks.amazonaws.com` on behalf of
        `source_arn` (AccessDenied unless its trust policy allows that)."""
        return await self._sts.assume_role(
            service_principal(ECS_TASKS_PRINCIPAL, account_id),
            role_arn,
            session_name,
            duration_seconds=TASK_SESSION_SECONDS,
            context=source_context(account_id, source_arn),
        )
