"""ECR lifecycle rules applied to a repository's images: a pure function of the rules, the
images and the time, so a preview and the run that follows decide alike.

The semantics are those ECR's documentation gives:
- every rule is evaluated over every image at once, then the rules are applied by priority,
  lowest `rulePriority` first, and an image is acted on by at most one rule;
- an image that a rule's tag selection (and storage class) matches can never be acted on by a
  rule of lower priority, even when that rule left it alone (the rule "identified" it);
- a rule still counts images identified by higher-priority rules (`imageCountMoreThan` keeps
  the newest N of everything it selects), it only cannot mark them;
- `tagPrefixList`/`tagPatternList`: each entry must match some tag of the image;
- `imageCountMoreThan` keeps the newest N by push time (the last activation for an image
  restored from archive); `sinceImagePushed`, `sinceImagePulled` (push time, or the last
  activation, for an image not pulled since) and `sinceImageTransitioned` (archived images)
  select images older than N days;
- an image listed by an index of the repository is never acted on while the index stays, and
  an archived image is never expired within its 90-day minimum.

Referrers (signatures, SBOMs) are not images here: they follow their subject
(`service/lifecycle.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import re2

from cargohold.domain.lifecycle_policy import ARCHIVE_MINIMUM_DAYS, LifecycleRule

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class LifecycleImage:
    """What the rules see of one image."""

    key: int
    digest: str
    tags: tuple[str, ...]
    pushed_at: float
    last_pulled_at: float | None = None
    #: "standard" or "archive".
    storage_class: str = "standard"
    archived_at: float | None = None
    #: When it was last restored from archive.
    activated_at: float | None = None
    #: Listed by an index (manifest list) of the same repository.
    in_index: bool = False

    @property
    def push_order(self) -> float:
        """The time expiration is ordered by: the push, or the last restore after it."""
        return self.activated_at if self.activated_at is not None else self.pushed_at

    @property
    def pulled_reference(self) -> float:
        """The time `sinceImagePulled` counts from."""
        if self.last_pulled_at is not None and (
            self.activated_at is None or self.last_pulled_at >= self.activated_at
        ):
            return self.last_pulled_at
        return self.push_order


@dataclass(frozen=True, slots=True)
class LifecycleDecision:
    """One image a rule acts on."""

    image: LifecycleImage
    rule: LifecycleRule

    @property
    def action(self) -> str:
        return self.rule.action

    @property
    def target_storage_class(self) -> str | None:
        return self.rule.target_storage_class


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re2._Regexp[str]:
    # At most four stars (the policy's rule), decided in linear time by RE2 anyway.
    return re2.compile(".*".join(re2.escape(piece) for piece in pattern.split("*")))


def _some_tag_matches(pattern: str, tags: Iterable[str]) -> bool:
    compiled = _pattern(pattern)
    return any(compiled.fullmatch(tag) is not None for tag in tags)


def selects(rule: LifecycleRule, image: LifecycleImage) -> bool:
    """Whether the rule's tag selection and storage class take the image in (its count or age
    aside)."""
    if image.storage_class != rule.storage_class:
        return False
    if rule.tag_status == "any":
        return True
    if rule.tag_status == "untagged":
        return not image.tags
    if not image.tags:
        return False
    if rule.tag_prefixes:
        return all(any(tag.startswith(p) for tag in image.tags) for p in rule.tag_prefixes)
    return all(_some_tag_matches(p, image.tags) for p in rule.tag_patterns)


def _marked(rule: LifecycleRule, selected: Sequence[LifecycleImage], now: float) -> list[int]:
    """The keys of the selected images the rule's count or age condition marks."""
    if rule.count_type == "imageCountMoreThan":
        newest_first = sorted(selected, key=lambda i: (i.push_order, i.key), reverse=True)
        return [image.key for image in newest_first[rule.count_number :]]
    limit = rule.count_number * DAY
    if rule.count_type == "sinceImagePushed":
        return [i.key for i in selected if now - i.pushed_at > limit]
    if rule.count_type == "sinceImagePulled":
        return [i.key for i in selected if now - i.pulled_reference > limit]
    return [i.key for i in selected if i.archived_at is not None and now - i.archived_at > limit]


def _may_act(rule: LifecycleRule, image: LifecycleImage, now: float) -> bool:
    if image.in_index:
        return False
    if rule.action == "expire" and image.storage_class == "archive":
        archived = image.archived_at if image.archived_at is not None else now
        return now - archived >= ARCHIVE_MINIMUM_DAYS * DAY
    return not (rule.action == "transition" and image.storage_class == "archive")


def evaluate(
    rules: Sequence[LifecycleRule], images: Sequence[LifecycleImage], now: float
) -> list[LifecycleDecision]:
    """What the policy does to the images at `now`, oldest push first."""
    by_key = {image.key: image for image in images}
    identified: set[int] = set()
    decided: dict[int, LifecycleDecision] = {}
    for rule in sorted(rules, key=lambda r: r.priority):
        selected = [image for image in images if selects(rule, image)]
        for key in _marked(rule, selected, now):
            image = by_key[key]
            if key not in identified and key not in decided and _may_act(rule, image, now):
                decided[key] = LifecycleDecision(image, rule)
        identified.update(image.key for image in selected)
    return sorted(decided.values(), key=lambda d: (d.image.push_order, d.image.key))
