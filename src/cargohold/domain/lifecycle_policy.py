"""ECR lifecycle policy text: its rules, read and checked as ECR checks them.

ECR checks a policy against a JSON schema first and answers that schema's messages (`object has
missing required properties (["rules"])`, `instance value ("x") not found in enum …`), then
checks the rules against each other (one rule selecting untagged images per storage class, the
`any` rule last, …). Every refusal is an `InvalidParameter` worded "Invalid parameter at
'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: …'".
Evaluation of the rules over a repository's images is `domain/lifecycle.py`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cargohold.domain import jsondoc
from cargohold.domain.errors import InvalidParameter

#: At most this many rules in one policy.
MAX_RULES = 50
#: At most this many `*` in one tag pattern.
MAX_WILDCARDS = 4
#: Archived images stay archived this long before a rule may expire them (days).
ARCHIVE_MINIMUM_DAYS = 90

TAG_STATUSES = ("tagged", "untagged", "any")
COUNT_TYPES = (
    "imageCountMoreThan",
    "sinceImagePushed",
    "sinceImagePulled",
    "sinceImageTransitioned",
)
AGE_COUNT_TYPES = frozenset(COUNT_TYPES[1:])
STORAGE_CLASSES = ("standard", "archive")
ACTIONS = ("expire", "transition")

_RULE_MEMBERS = ("rulePriority", "description", "selection", "action")
_SELECTION_MEMBERS = (
    "tagStatus",
    "tagPatternList",
    "tagPrefixList",
    "storageClass",
    "countType",
    "countUnit",
    "countNumber",
)
_ACTION_MEMBERS = ("type", "targetStorageClass")


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    priority: int
    description: str | None
    tag_status: str
    tag_prefixes: tuple[str, ...]
    tag_patterns: tuple[str, ...]
    storage_class: str
    count_type: str
    count_unit: str | None
    count_number: int
    action: str
    target_storage_class: str | None

    @property
    def selection(self) -> dict[str, Any]:
        """The rule's selection as the policy text spells it."""
        shaped: dict[str, Any] = {"tagStatus": self.tag_status}
        if self.tag_prefixes:
            shaped["tagPrefixList"] = list(self.tag_prefixes)
        if self.tag_patterns:
            shaped["tagPatternList"] = list(self.tag_patterns)
        shaped["storageClass"] = self.storage_class
        shaped["countType"] = self.count_type
        if self.count_unit is not None:
            shaped["countUnit"] = self.count_unit
        shaped["countNumber"] = self.count_number
        return shaped


def policy_invalid(detail: str) -> InvalidParameter:
    return InvalidParameter(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
        f"'Lifecycle policy validation failure: {detail}'"
    )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _require_type(value: Any, wanted: str) -> None:
    if _json_type(value) != wanted:
        raise policy_invalid(
            f"instance type ({_json_type(value)}) does not match any allowed primitive type "
            f'(allowed: ["{wanted}"])'
        )


def _members(document: Any, required: Sequence[str], allowed: Sequence[str]) -> dict[str, Any]:
    _require_type(document, "object")
    assert isinstance(document, dict)
    missing = [name for name in required if name not in document]
    if missing:
        raise policy_invalid(f"object has missing required properties ({json.dumps(missing)})")
    extra = sorted(name for name in document if name not in allowed)
    if extra:
        raise policy_invalid(
            "object instance has properties which are not allowed by the schema: "
            f"({json.dumps(extra)})"
        )
    return document


def _enum(value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise policy_invalid(
            f"instance value ({json.dumps(value)}) not found in enum "
            f"(possible values: {json.dumps(list(allowed))})"
        )
    assert isinstance(value, str)
    return value


def _positive(value: Any) -> int:
    _require_type(value, "integer")
    if value < 1:
        raise policy_invalid(
            f"numeric instance is lower than the required minimum (minimum: 1, found: {value})"
        )
    assert isinstance(value, int)
    return value


def _strings(value: Any) -> tuple[str, ...]:
    _require_type(value, "array")
    for item in value:
        _require_type(item, "string")
    if not value:
        raise policy_invalid("array is too short: must have at least 1 elements but instance has 0")
    return tuple(value)


def _rule(document: Any) -> LifecycleRule:
    rule = _members(document, ("rulePriority", "selection", "action"), _RULE_MEMBERS)
    priority = _positive(rule["rulePriority"])
    description = rule.get("description")
    if description is not None:
        _require_type(description, "string")
    selection = _members(
        rule["selection"], ("tagStatus", "countType", "countNumber"), _SELECTION_MEMBERS
    )
    action = _members(rule["action"], ("type",), _ACTION_MEMBERS)
    tag_status = _enum(selection["tagStatus"], TAG_STATUSES)
    count_type = _enum(selection["countType"], COUNT_TYPES)
    count_unit = _enum(selection["countUnit"], ("days",)) if "countUnit" in selection else None
    storage_class = (
        _enum(selection["storageClass"], STORAGE_CLASSES)
        if "storageClass" in selection
        else "standard"
    )
    kind = _enum(action["type"], ACTIONS)
    target = (
        _enum(action["targetStorageClass"], ("archive",))
        if "targetStorageClass" in action
        else None
    )
    parsed = LifecycleRule(
        priority=priority,
        description=description,
        tag_status=tag_status,
        tag_prefixes=_strings(selection["tagPrefixList"]) if "tagPrefixList" in selection else (),
        tag_patterns=_strings(selection["tagPatternList"]) if "tagPatternList" in selection else (),
        storage_class=storage_class,
        count_type=count_type,
        count_unit=count_unit,
        count_number=_positive(selection["countNumber"]),
        action=kind,
        target_storage_class=target,
    )
    _check_rule(parsed, selection)
    return parsed


def _check_rule(rule: LifecycleRule, selection: Mapping[str, Any]) -> None:
    """What the schema cannot say about one rule."""
    if rule.tag_status == "tagged" and not (rule.tag_prefixes or rule.tag_patterns):
        raise policy_invalid("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.")
    if rule.tag_status != "tagged" and (
        "tagPrefixList" in selection or "tagPatternList" in selection
    ):
        raise policy_invalid(
            "tagPrefixList and tagPatternList can only be used when tagStatus=TAGGED."
        )
    if rule.tag_prefixes and rule.tag_patterns:
        raise policy_invalid("A rule can specify tagPrefixList or tagPatternList, but not both.")
    for pattern in rule.tag_patterns:
        if pattern.count("*") > MAX_WILDCARDS:
            raise policy_invalid(
                f"tagPatternList '{pattern}' has more than {MAX_WILDCARDS} wildcards (*)."
            )
    if rule.count_type in AGE_COUNT_TYPES and rule.count_unit is None:
        raise policy_invalid(f"countUnit is required when countType={rule.count_type}.")
    if rule.count_type == "imageCountMoreThan" and rule.count_unit is not None:
        raise policy_invalid(
            "countUnit can only be used when countType is sinceImagePushed, "
            "sinceImagePulled or sinceImageTransitioned."
        )
    if rule.action == "transition" and rule.target_storage_class is None:
        raise policy_invalid("targetStorageClass is required when action type=transition.")
    if rule.action == "expire" and rule.target_storage_class is not None:
        raise policy_invalid("targetStorageClass can only be used when action type=transition.")
    if rule.count_type == "sinceImagePulled" and rule.action != "transition":
        raise policy_invalid(
            "countType=sinceImagePulled can only be used with action type=transition."
        )
    if rule.count_type == "sinceImageTransitioned":
        if rule.storage_class != "archive" or rule.action != "expire":
            raise policy_invalid(
                "countType=sinceImageTransitioned requires storageClass=archive and action "
                "type=expire."
            )
        if rule.count_number < ARCHIVE_MINIMUM_DAYS:
            raise policy_invalid(
                f"Archived images must be kept for at least {ARCHIVE_MINIMUM_DAYS} days: "
                f"countNumber must be at least {ARCHIVE_MINIMUM_DAYS}."
            )
    elif rule.storage_class != "standard":
        raise policy_invalid(
            "storageClass=archive can only be used when countType=sinceImageTransitioned."
        )


def _check_rules(rules: Sequence[LifecycleRule]) -> None:
    """What holds between rules: unique priorities, and per storage class one untagged rule,
    the `any` rule last, and no two rules with the same set of tag filters."""
    priorities = [rule.priority for rule in rules]
    if len(set(priorities)) != len(priorities):
        raise policy_invalid("rulePriority must be unique across rules.")
    for storage_class in STORAGE_CLASSES:
        selecting = [rule for rule in rules if rule.storage_class == storage_class]
        if sum(rule.tag_status == "untagged" for rule in selecting) > 1:
            raise policy_invalid("Only one rule can select Untagged images per storage class.")
        highest = max((rule.priority for rule in selecting), default=0)
        for rule in selecting:
            if rule.tag_status == "any" and rule.priority != highest:
                raise policy_invalid(
                    "Rule for tagStatus=ANY must have the lowest priority per storage class"
                )
        seen: set[frozenset[str]] = set()
        for rule in selecting:
            if rule.tag_status != "tagged":
                continue
            filters = frozenset(rule.tag_prefixes or rule.tag_patterns)
            if filters in seen:
                raise policy_invalid(
                    "The rules selecting a storage class must each have a unique set of tag "
                    "prefixes or patterns."
                )
            seen.add(filters)


def parse_lifecycle_policy(text: str) -> tuple[LifecycleRule, ...]:
    """The rules of a policy, lowest `rulePriority` first; `InvalidParameter` as ECR words it
    when the text is not a valid policy."""
    try:
        document = jsondoc.loads(text)
    except ValueError:
        raise policy_invalid("Could not map policyString into LifecyclePolicy.") from None
    if not isinstance(document, dict):
        raise policy_invalid("Could not map policyString into LifecyclePolicy.")
    policy = _members(document, ("rules",), ("rules",))
    rules = policy["rules"]
    _require_type(rules, "array")
    if not rules:
        raise policy_invalid(
            "array is too short: must have at least 1 elements but instance has 0 elements"
        )
    if len(rules) > MAX_RULES:
        raise policy_invalid(
            f"array is too long: must have at most {MAX_RULES} elements but instance has "
            f"{len(rules)} elements"
        )
    parsed = [_rule(rule) for rule in rules]
    _check_rules(parsed)
    return tuple(sorted(parsed, key=lambda rule: rule.priority))
