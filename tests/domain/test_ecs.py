"""ECS names and ARNs as calls give them: what a cluster, task or instance reference resolves
to, and what it is refused as."""

from __future__ import annotations

import pytest

from cargohold.domain.ecs import (
    ClusterNotFound,
    InvalidParameter,
    cluster_name,
    host_terminated,
    resource_id,
)

ARN = "arn:aws:ecs:us-east-1:123456789012"
TASK = "0123456789abcdef0123456789abcdef"


def test_a_cluster_by_name_or_arn() -> None:
    assert cluster_name(None) == "default"
    assert cluster_name("prod_1-a") == "prod_1-a"
    assert cluster_name(f"{ARN}:cluster/prod_1-a") == "prod_1-a"


@pytest.mark.parametrize(
    "reference",
    ["a/b", "a b", f"{ARN}:cluster/a/../b", f"{ARN}:cluster/a/b", f"{ARN}:cluster/a*"],
)
def test_a_cluster_name_out_of_the_rules_names_no_cluster(reference: str) -> None:
    """A cluster ARN's name follows the rules of a name: it ends up in the resource ARN a call
    is authorized on."""
    with pytest.raises(ClusterNotFound):
        cluster_name(reference)


def test_a_task_or_instance_by_id_or_arn() -> None:
    assert resource_id(TASK, "task") == TASK
    assert resource_id(f"{ARN}:task/prod/{TASK}", "task") == TASK
    assert resource_id(f"{ARN}:container-instance/prod/{TASK}", "container-instance") == TASK


@pytest.mark.parametrize(
    ("reference", "kind"),
    [
        ("xyz", "task"),
        (f"{ARN}:cluster/prod", "task"),
        (f"{ARN}:task/prod/../x", "task"),
        (f"{ARN}:task/prod/{TASK}x", "task"),
        (f"{ARN}:container-instance/prod/*", "container-instance"),
    ],
)
def test_a_malformed_task_or_instance_reference_is_refused(reference: str, kind: str) -> None:
    with pytest.raises(InvalidParameter):
        resource_id(reference, kind)


def test_the_reason_of_a_task_whose_instance_went_away() -> None:
    assert host_terminated("i-0abc") == "Host EC2 (instance i-0abc) terminated."
