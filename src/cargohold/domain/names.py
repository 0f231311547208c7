"""Repository names and tags: ECR's naming rules, which are stricter than the OCI grammar."""

from __future__ import annotations

import re

from cargohold.domain.errors import NameInvalid, TagInvalid

# ECR's RepositoryName shape: 2–256 characters, lower-case components separated by '/'.
_REPOSITORY = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
MIN_NAME = 2
MAX_NAME = 256


def validate_repository_name(name: str) -> str:
    if not MIN_NAME <= len(name) <= MAX_NAME or not _REPOSITORY.fullmatch(name):
        raise NameInvalid(
            f"Invalid repository name: {name[:300]!r}. Names are 2 to 256 characters of "
            "lower-case letters, digits and . _ - separators, with / between components."
        )
    return name


def validate_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise TagInvalid(f"invalid tag: {tag[:200]!r}")
    return tag
