"""Lifecycle rule evaluation: the examples of ECR's lifecycle documentation, and each rule of
its evaluation, as a pure function of rules, images and time."""

from __future__ import annotations

import json
from typing import Any

from cargohold.domain.lifecycle import DAY, LifecycleImage, evaluate
from cargohold.domain.lifecycle_policy import parse_lifecycle_policy

NOW = 1_800_000_000.0


def rule(priority: int, action: str = "expire", **selection: Any) -> dict[str, Any]:
    shaped: dict[str, Any] = {"type": action}
    if action == "transition":
        shaped["targetStorageClass"] = "archive"
    return {"rulePriority": priority, "selection": selection, "action": shaped}


def policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": list(rules)})


def image(key: int, tags: list[str], days_ago: float, **extra: Any) -> LifecycleImage:
    return LifecycleImage(key, f"sha256:{key:064x}", tuple(tags), NOW - days_ago * DAY, **extra)


def outcome(text: str, images: list[LifecycleImage]) -> dict[int, tuple[str, int]]:
    return {
        d.image.key: (d.action, d.rule.priority)
        for d in evaluate(parse_lifecycle_policy(text), images, NOW)
    }


def count(n: int) -> dict[str, Any]:
    return {"countType": "imageCountMoreThan", "countNumber": n}


def age(kind: str, days: int) -> dict[str, Any]:
    return {"countType": kind, "countUnit": "days", "countNumber": days}


BETA_PROD = [
    image(1, ["beta-1", "prod-1"], 10),
    image(2, ["beta-2", "prod-2"], 9),
    image(3, ["beta-3"], 8),
]


def test_multiple_rules_example_a() -> None:
    text = policy(
        rule(1, tagStatus="tagged", tagPatternList=["prod*"], **count(1)),
        rule(2, tagStatus="tagged", tagPatternList=["beta*"], **count(1)),
    )
    # Rule 2 would mark images 1 and 2, but rule 1 identified both: only 1 goes, by rule 1.
    assert outcome(text, BETA_PROD) == {1: ("expire", 1)}


def test_multiple_rules_example_b() -> None:
    text = policy(
        rule(1, tagStatus="tagged", tagPatternList=["beta*"], **count(1)),
        rule(2, tagStatus="tagged", tagPatternList=["prod*"], **count(1)),
    )
    assert outcome(text, BETA_PROD) == {1: ("expire", 1), 2: ("expire", 1)}


def test_all_tags_of_a_rule_must_match() -> None:
    images = [
        image(1, ["alpha-1"], 12),
        image(2, ["beta-1"], 11),
        image(3, ["alpha-2", "beta-2"], 10),
        image(4, ["alpha-3"], 4),
        image(5, ["beta-3"], 3),
        image(6, ["alpha-4", "beta-4"], 2),
    ]
    text = policy(
        rule(
            1, tagStatus="tagged", tagPatternList=["alpha*", "beta*"], **age("sinceImagePushed", 5)
        )
    )
    assert outcome(text, images) == {3: ("expire", 1)}
    prefixes = policy(rule(1, tagStatus="tagged", tagPrefixList=["alpha", "beta"], **count(0 + 1)))
    assert outcome(prefixes, images) == {3: ("expire", 1)}


def test_every_rule_type_in_one_policy() -> None:
    images = [
        image(1, ["alpha-1", "beta-1"], 4),
        image(2, [], 3),
        image(3, ["alpha-2"], 2),
        image(4, ["git hash"], 1.0),
        image(5, [], 0.99),
    ]
    text = policy(
        rule(1, tagStatus="tagged", tagPatternList=["alpha*"], **count(1)),
        rule(2, tagStatus="untagged", **age("sinceImagePushed", 1)),
        rule(3, tagStatus="any", **count(1)),
    )
    assert outcome(text, images) == {1: ("expire", 1), 2: ("expire", 2), 4: ("expire", 3)}


def test_keep_only_the_newest_of_all() -> None:
    images = [image(1, ["a"], 4), image(2, ["b"], 3), image(3, [], 2), image(4, ["a2"], 1)]
    assert outcome(policy(rule(1, tagStatus="any", **count(1))), images) == {
        1: ("expire", 1),
        2: ("expire", 1),
        3: ("expire", 1),
    }


def test_patterns_take_up_to_four_wildcards_anywhere() -> None:
    images = [image(1, ["repo-production"], 5), image(2, ["prod-team"], 5), image(3, ["dev"], 5)]
    text = policy(
        rule(1, tagStatus="tagged", tagPatternList=["*prod*"], **age("sinceImagePushed", 1))
    )
    assert set(outcome(text, images)) == {1, 2}
    exact = policy(
        rule(1, tagStatus="tagged", tagPatternList=["dev"], **age("sinceImagePushed", 1))
    )
    assert set(outcome(exact, images)) == {3}


def test_since_pulled_falls_back_to_push_then_activation() -> None:
    images = [
        image(1, ["a"], 100, last_pulled_at=NOW - 5 * DAY),  # pulled recently
        image(2, ["b"], 100),  # never pulled: its push counts
        image(3, ["c"], 100, activated_at=NOW - 5 * DAY),  # restored, not pulled since
        image(4, ["d"], 100, last_pulled_at=NOW - 50 * DAY),
    ]
    text = policy(rule(1, "transition", tagStatus="any", **age("sinceImagePulled", 30)))
    assert outcome(text, images) == {2: ("transition", 1), 4: ("transition", 1)}


def test_archived_images_expire_after_their_minimum_only() -> None:
    images = [
        image(1, ["a"], 400, storage_class="archive", archived_at=NOW - 100 * DAY),
        image(2, ["b"], 400, storage_class="archive", archived_at=NOW - 95 * DAY),
        image(3, ["c"], 400),
    ]
    text = policy(
        rule(1, tagStatus="any", storageClass="archive", **age("sinceImageTransitioned", 98))
    )
    assert outcome(text, images) == {1: ("expire", 1)}


def test_transition_leaves_archived_images_alone_and_rules_see_one_class() -> None:
    images = [
        image(1, ["a"], 40, storage_class="archive", archived_at=NOW - 1 * DAY),
        image(2, ["b"], 40),
    ]
    text = policy(rule(1, "transition", tagStatus="any", **age("sinceImagePushed", 30)))
    assert outcome(text, images) == {2: ("transition", 1)}


def test_children_of_an_index_stay() -> None:
    images = [image(1, [], 40, in_index=True), image(2, [], 40)]
    assert outcome(policy(rule(1, tagStatus="untagged", **age("sinceImagePushed", 1))), images) == {
        2: ("expire", 1)
    }


def test_count_keeps_newest_by_restore_time() -> None:
    images = [image(1, ["a"], 10, activated_at=NOW - 1 * DAY), image(2, ["b"], 5)]
    assert outcome(policy(rule(1, tagStatus="any", **count(1))), images) == {2: ("expire", 1)}
