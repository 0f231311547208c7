"""Matching the parts of a statement against a request: actions, resource ARNs, principals, and the
policy variables (`${aws:username}`) that Resource and condition values may carry.

How AWS matches, as the IAM JSON policy reference documents it:
- Actions: `service:ActionName`, compared without regard to case; `*` and `?` are wildcards.
- ARNs (Resource, NotResource, the Arn* operators), case-sensitive: `*` and `?` match within
  a colon-separated segment, except that "if the * wildcard is the last character of a resource
  ARN segment, it can expand to match beyond colon boundaries" (so `arn:aws:ecr:*` covers every
  ECR ARN, and `arn:aws:ecr:us-*:repository/app` every region and account).
- Policy variables (Version 2012-10-17 only): `${key}` takes the value of a single-valued context
  key, `${key, 'default'}` a default where the key is missing; `${*}`, `${?}` and `${$}` stand for
  the literal characters. A variable with neither value nor default leaves the element unmatchable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

import re2

#: Wildcards written in a policy are carried through variable substitution as these private-use
#: characters, so that characters a variable brings in (or `${*}`) stay literal.
STAR = "\ue000"
QUESTION = "\ue001"

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}
_DEFAULT = re.compile(r"\s*(?P<key>[^,]+?)\s*,\s*'(?P<default>[^']*)'\s*")

#: Context keys as the request carries them: lower-cased names, each with its values.
NormalizedContext = Mapping[str, tuple[str, ...]]


def to_pattern(text: str) -> str:
    """A policy string with its wildcards marked, and no variables resolved."""
    return text.replace("*", STAR).replace("?", QUESTION)


def resolve(text: str, context: NormalizedContext, *, variables: bool) -> str | None:
    """The policy string `text` as a pattern, its variables replaced by their values.

    Returns None when a variable has no value in the context and no default: such an element
    matches nothing. Without `variables` (policy Version 2008-10-17), `${…}` is literal text.
    """
    if not variables or "${" not in text:
        return to_pattern(text)
    out: list[str] = []
    position = 0
    for found in _VARIABLE.finditer(text):
        out.append(to_pattern(text[position : found.start()]))
        value = _variable_value(found.group(1), context)
        if value is None:
            return None
        out.append(value)
        position = found.end()
    out.append(to_pattern(text[position:]))
    return "".join(out)


def _variable_value(body: str, context: NormalizedContext) -> str | None:
    if body in _ESCAPES:
        return _ESCAPES[body]
    default: str | None = None
    with_default = _DEFAULT.fullmatch(body)
    if with_default is not None:
        body, default = with_default["key"], with_default["default"]
    values = context.get(body.strip().lower())
    # Multivalued keys cannot be policy variables: only a key with exactly one value resolves.
    if values is not None and len(values) == 1:
        return values[0]
    return default


def literal(pattern: str) -> str:
    """A pattern read as plain text: what the equality operators compare."""
    return pattern.replace(STAR, "*").replace(QUESTION, "?")


#: One character of UTF-8 (lone surrogates included, as `surrogatepass` writes them), matched as
#: bytes: a wildcard's `?` stands for a character, never for part of one.
_ONE = (
    rb"(?:[\x00-\x7f]|[\xc0-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf7][\x80-\xbf]{3})"
)
_ONE_IN_SEGMENT = rb"(?:[\x00-\x39\x3b-\x7f]|" + _ONE[4:]


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool, arn: bool) -> re2._Regexp[bytes]:
    """The wildcard pattern as an RE2 expression over UTF-8 bytes: decided in time linear in
    the value, whatever the policy's author wrote (a backtracking engine takes seconds on a few
    stars against a long value)."""
    parts: list[bytes] = []
    for index, char in enumerate(pattern):
        if char == STAR:
            # In an ARN, a star stays inside its segment unless it ends one.
            ends_segment = index + 1 == len(pattern) or pattern[index + 1] == ":"
            parts.append(b".*" if not arn or ends_segment else b"[^:]*")
        elif char == QUESTION:
            parts.append(_ONE_IN_SEGMENT if arn else _ONE)
        else:
            parts.append(re2.escape(_utf8(char)))
    options = re2.Options()
    # Bytes as they are: the expression spells out what a character is (`_ONE`), and a
    # multi-byte character never holds the byte of `:`.
    options.encoding = re2.Options.Encoding.LATIN1  # type: ignore[attr-defined]
    options.dot_nl = True
    options.case_sensitive = not ignore_case
    return re2.compile(b"".join(parts), options)


def glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether `value` matches the whole of `pattern` (`*`: any run, `?`: one character)."""
    if STAR not in pattern and QUESTION not in pattern:
        return pattern.casefold() == value.casefold() if ignore_case else pattern == value
    if ignore_case:
        # Case is folded on ASCII only (the RE2 expression is over bytes): actions are ASCII.
        pattern, value = pattern.lower(), value.lower()
    return _compiled(pattern, False, False).fullmatch(_utf8(value)) is not None


def action_matches(pattern: str, action: str) -> bool:
    """`ecr:Put*` against `ecr:PutImage`: service prefix and action name both ignore case."""
    return glob(to_pattern(pattern), action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """A resolved ARN pattern against a request ARN, segment-aware as AWS matches ARNs."""
    if STAR not in pattern and QUESTION not in pattern:
        return pattern == arn
    return _compiled(pattern, False, True).fullmatch(_utf8(arn)) is not None
