"""ECS helpers shared by the tests: roles ECS may assume."""

from __future__ import annotations

import json
from typing import Any

TASKS_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def make_role(iam: Any, name: str, trust: str = TASKS_TRUST) -> str:
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    return arn
