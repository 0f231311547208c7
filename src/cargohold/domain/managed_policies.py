"""The AWS managed policies a registry's administrator attaches: AWS's names, ARNs, descriptions,
versions and statements, as AWS publishes them.

They exist in every account (ARN account `aws`), cannot be changed or deleted, and are stored
like customer managed policies (see `ManagedPolicyService.ensure_aws_managed_policies`) so
that listing, attaching and evaluating treat both alike. The documents below are AWS's current
default versions; the ECR ones name actions this registry serves and some it does not (the
others are harmless: no request ever asks for them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

AWS_ACCOUNT: Final = "aws"


@dataclass(frozen=True, slots=True)
class AwsManagedPolicy:
    name: str
    path: str
    #: The unique id AWS gives the policy (`ANPA…`), the same in every account. (PullOnly's
    #: is this registry's own: AWS's was not at hand.)
    id: str
    description: str
    version_id: str
    #: When AWS created the policy and its current default version (epoch seconds).
    created_at: float
    updated_at: float
    document: dict[str, Any]

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{AWS_ACCOUNT}:policy{self.path}{self.name}"

    @property
    def document_text(self) -> str:
        return json.dumps(self.document, indent=4)


def _at(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _allow(*actions: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
    }


_ECR_READ: Final = (
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetRepositoryPolicy",
    "ecr:DescribeRepositories",
    "ecr:ListImages",
    "ecr:DescribeImages",
    "ecr:BatchGetImage",
    "ecr:GetLifecyclePolicy",
    "ecr:GetLifecyclePolicyPreview",
    "ecr:ListTagsForResource",
    "ecr:DescribeImageScanFindings",
)

AMAZON_EC2_CONTAINER_REGISTRY_FULL_ACCESS: Final = AwsManagedPolicy(
    name="AmazonEC2ContainerRegistryFullAccess",
    path="/",
    id="ANPAIESRL7KD7IIVF6V4W",
    description="Provides administrative access to Amazon ECR resources",
    version_id="v3",
    created_at=_at("2015-12-21T17:06:48Z"),
    updated_at=_at("2020-12-05T00:04:19Z"),
    document={
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ecr:*", "cloudtrail:LookupEvents"],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"iam:AWSServiceName": ["replication.ecr.amazonaws.com"]}
                },
            },
        ],
    },
)

AMAZON_EC2_CONTAINER_REGISTRY_POWER_USER: Final = AwsManagedPolicy(
    name="AmazonEC2ContainerRegistryPowerUser",
    path="/",
    id="ANPAJDNE5PIHROIBGGDDW",
    description=(
        "Provides full access to Amazon EC2 Container Registry repositories, but does not allow "
        "repository deletion or policy changes."
    ),
    version_id="v3",
    created_at=_at("2015-12-21T17:05:33Z"),
    updated_at=_at("2019-12-10T20:48:08Z"),
    document=_allow(
        *_ECR_READ,
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
    ),
)

AMAZON_EC2_CONTAINER_REGISTRY_READ_ONLY: Final = AwsManagedPolicy(
    name="AmazonEC2ContainerRegistryReadOnly",
    path="/",
    id="ANPAIFYZPA37OOHVIH7KQ",
    description="Provides read-only access to Amazon EC2 Container Registry repositories.",
    version_id="v3",
    created_at=_at("2015-12-21T17:04:15Z"),
    updated_at=_at("2019-12-10T20:56:32Z"),
    document=_allow(*_ECR_READ),
)

AMAZON_EC2_CONTAINER_REGISTRY_PULL_ONLY: Final = AwsManagedPolicy(
    name="AmazonEC2ContainerRegistryPullOnly",
    path="/",
    id="ANPAZKAPJZG4ONJMY5FUW",
    description="Provides access to pull images from Amazon EC2 Container Registry repositories.",
    version_id="v1",
    created_at=_at("2024-10-04T16:58:49Z"),
    updated_at=_at("2024-10-04T16:58:49Z"),
    document=_allow(
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchImportUpstreamImage",
    ),
)

AMAZON_ECS_TASK_EXECUTION_ROLE_POLICY: Final = AwsManagedPolicy(
    name="AmazonECSTaskExecutionRolePolicy",
    path="/service-role/",
    id="ANPAJG4T4G4PV56DE72PY",
    description=(
        "Provides access to other AWS service resources that are required to run Amazon ECS tasks"
    ),
    version_id="v1",
    created_at=_at("2017-11-16T18:48:22Z"),
    updated_at=_at("2017-11-16T18:48:22Z"),
    document=_allow(
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ),
)

AWS_MANAGED_POLICIES: Final[tuple[AwsManagedPolicy, ...]] = (
    AMAZON_EC2_CONTAINER_REGISTRY_FULL_ACCESS,
    AMAZON_EC2_CONTAINER_REGISTRY_POWER_USER,
    AMAZON_EC2_CONTAINER_REGISTRY_READ_ONLY,
    AMAZON_EC2_CONTAINER_REGISTRY_PULL_ONLY,
    AMAZON_ECS_TASK_EXECUTION_ROLE_POLICY,
)
