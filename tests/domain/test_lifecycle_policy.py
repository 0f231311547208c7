"""Lifecycle policy text checked as ECR checks it: the schema's messages, then the rules'
relations, each refusal in ECR's words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cargohold.domain.errors import InvalidParameter
from cargohold.domain.lifecycle_policy import MAX_RULES, parse_lifecycle_policy

PREFIX = (
    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
    "'Lifecycle policy validation failure: "
)


def rule(priority: int = 1, action: Any = None, **selection: Any) -> dict[str, Any]:
    return {
        "rulePriority": priority,
        "selection": selection
        or {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
        "action": action or {"type": "expire"},
    }


def untagged(priority: int) -> dict[str, Any]:
    return rule(priority, tagStatus="untagged", countType="imageCountMoreThan", countNumber=1)


def failure(document: Any) -> str:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(InvalidParameter) as caught:
        parse_lifecycle_policy(text)
    message = caught.value.message
    assert message.startswith(PREFIX) and message.endswith("'")
    return message[len(PREFIX) : -1]


def test_a_valid_policy_is_read_lowest_priority_first() -> None:
    rules = parse_lifecycle_policy(json.dumps({"rules": [rule(5), untagged(2)]}))
    assert [r.priority for r in rules] == [2, 5]
    assert rules[1].selection == {
        "tagStatus": "any",
        "storageClass": "standard",
        "countType": "imageCountMoreThan",
        "countNumber": 1,
    }


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        ("not json", "Could not map policyString into LifecyclePolicy."),
        ("[1]", "Could not map policyString into LifecyclePolicy."),
        ({}, 'object has missing required properties (["rules"])'),
        (
            {"rules": [], "x": 1},
            'object instance has properties which are not allowed by the schema: (["x"])',
        ),
        (
            {"rules": {}},
            'instance type (object) does not match any allowed primitive type (allowed: ["array"])',
        ),
        (
            {"rules": [{"rulePriority": 1}]},
            'object has missing required properties (["selection", "action"])',
        ),
        (
            {"rules": [rule(0)]},
            "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
        ),
        (
            {"rules": [rule(1, tagStatus="some", countType="imageCountMoreThan", countNumber=1)]},
            'instance value ("some") not found in enum '
            '(possible values: ["tagged", "untagged", "any"])',
        ),
        (
            {"rules": [rule(1, {"type": "delete"})]},
            'instance value ("delete") not found in enum '
            '(possible values: ["expire", "transition"])',
        ),
        (
            {"rules": [rule(1, tagStatus="any", countType="imageCountMoreThan", countNumber="1")]},
            "instance type (string) does not match any allowed primitive type "
            '(allowed: ["integer"])',
        ),
        (
            {"rules": [rule(1, tagStatus="tagged", countType="imageCountMoreThan", countNumber=1)]},
            "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.",
        ),
        (
            {"rules": [untagged(1), untagged(2)]},
            "Only one rule can select Untagged images per storage class.",
        ),
        (
            {"rules": [rule(1), untagged(2)]},
            "Rule for tagStatus=ANY must have the lowest priority per storage class",
        ),
        (
            {
                "rules": [
                    rule(1),
                    rule(1, tagStatus="untagged", countType="imageCountMoreThan", countNumber=2),
                ]
            },
            "rulePriority must be unique across rules.",
        ),
        (
            {
                "rules": [
                    rule(
                        1,
                        tagStatus="tagged",
                        tagPatternList=["*a*b*c*d*e"],
                        countType="imageCountMoreThan",
                        countNumber=1,
                    )
                ]
            },
            "tagPatternList '*a*b*c*d*e' has more than 4 wildcards (*).",
        ),
        (
            {"rules": [rule(1, tagStatus="any", countType="sinceImagePushed", countNumber=1)]},
            "countUnit is required when countType=sinceImagePushed.",
        ),
        (
            {
                "rules": [
                    rule(
                        1,
                        tagStatus="any",
                        countType="sinceImagePulled",
                        countUnit="days",
                        countNumber=1,
                    )
                ]
            },
            "countType=sinceImagePulled can only be used with action type=transition.",
        ),
        (
            {
                "rules": [
                    rule(
                        1,
                        tagStatus="any",
                        countType="sinceImageTransitioned",
                        countUnit="days",
                        countNumber=100,
                    )
                ]
            },
            "countType=sinceImageTransitioned requires storageClass=archive and "
            "action type=expire.",
        ),
        (
            {"rules": [rule(1, {"type": "transition"})]},
            "targetStorageClass is required when action type=transition.",
        ),
        (
            {
                "rules": [
                    rule(
                        i + 1,
                        tagStatus="tagged",
                        tagPrefixList=[f"p{i}"],
                        countType="imageCountMoreThan",
                        countNumber=1,
                    )
                    for i in range(MAX_RULES + 1)
                ]
            },
            f"array is too long: must have at most {MAX_RULES} elements but instance has "
            f"{MAX_RULES + 1} elements",
        ),
    ],
)
def test_refusals(document: Any, detail: str) -> None:
    assert failure(document) == detail


def test_four_wildcards_are_allowed() -> None:
    selection = {
        "tagStatus": "tagged",
        "tagPatternList": ["*test*1*2*3", "test*1*2*3*"],
        "countType": "imageCountMoreThan",
        "countNumber": 1,
    }
    assert parse_lifecycle_policy(json.dumps({"rules": [rule(1, **selection)]}))


def test_the_rules_of_each_storage_class_are_checked_apart() -> None:
    archive = rule(
        1,
        tagStatus="any",
        storageClass="archive",
        countType="sinceImageTransitioned",
        countUnit="days",
        countNumber=90,
    )
    transition = rule(
        2,
        {"type": "transition", "targetStorageClass": "archive"},
        tagStatus="any",
        countType="sinceImagePulled",
        countUnit="days",
        countNumber=30,
    )
    rules = parse_lifecycle_policy(json.dumps({"rules": [archive, transition]}))
    assert [r.storage_class for r in rules] == ["archive", "standard"]
    assert "at least 90" in failure(
        {"rules": [{**archive, "selection": {**archive["selection"], "countNumber": 30}}]}
    )
