"""botocore's model patterns, decided in time linear in the input.

The models' patterns are written for Java's regex engine, and a backtracking engine (Python's
`re`, Java's own) takes exponential time on some of them: `[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*`
against 30 × `a` and a `!`. Every pattern is therefore matched by RE2, whose time is linear in
the input, after translating what RE2 reads differently from Java:

- `\\uXXXX` (exactly four hex digits, as Java reads it) becomes `\\x{XXXX}`;
- `\\s` and `\\S` take Java's whitespace, which counts the vertical tab (RE2's does not);
- `\\w`, `\\d` and `\\p{…}` already mean in RE2 what they mean in Java: ASCII word characters and
  digits, Unicode general categories.

A pattern RE2 cannot express (lookaround, nested counted repetitions over RE2's limit) is
listed in `_REWRITES` with an equivalent RE2 expression and, where needed, a linear side
condition; the tests check each against the original. A model pattern that is neither is refused
when the service is built (`check_model`), never matched by a backtracking engine.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable
from dataclasses import dataclass

import re2
from botocore.model import ServiceModel

#: Whether a string satisfies a pattern, in time linear in its length.
Matcher = Callable[[str], bool]


class UnsupportedPattern(ValueError):
    """A model pattern that cannot be decided in linear time as written or rewritten."""


def _always(value: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _Rewrite:
    """An RE2 expression, and a linear condition both must hold, equivalent to a Java pattern."""

    expression: str
    condition: Matcher = _always


# A path segment of `[A-Za-z0-9._-]+` that is neither `.` nor `..`: what
# `(?!\.{1,2}(?:/|$))[A-Za-z0-9._-]+` says when a `/` or the end follows the segment.
_SEGMENT = r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)"
_BRACED = r"\{[A-Za-z0-9:/._-]+\}"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"

_REWRITES: dict[str, _Rewrite] = {
    # Segments separated by `/`, none `.` or `..`.
    r"^(?!\.{1,2}(?:/|$))[A-Za-z0-9._-]+(?:/(?!\.{1,2}(?:/|$))[A-Za-z0-9._-]+)*$": _Rewrite(
        rf"{_SEGMENT}(?:/{_SEGMENT})*"
    ),
    # The same with `{…}` segments, at least one of them (`(?=.*\{)`: a `{` only opens one).
    (
        r"^(?=.*\{)(?:\{[A-Za-z0-9:/._-]+\}|(?!\.{1,2}(?:/|$))[A-Za-z0-9._-]+)"
        r"(?:/(?:\{[A-Za-z0-9:/._-]+\}|(?!\.{1,2}(?:/|$))[A-Za-z0-9._-]+))*$"
    ): _Rewrite(rf"(?:{_SEGMENT}/)*{_BRACED}(?:/(?:{_BRACED}|{_SEGMENT}))*"),
    # Up to 32 DNS labels: RE2 refuses `{0,31}` around `{0,61}`, so the count is checked aside
    # (a label holds no `.`, so the labels are the dots plus one).
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?){0,31}$": (
        _Rewrite(rf"{_LABEL}(?:\.{_LABEL})*", lambda value: value.count(".") <= 31)
    ),
    # 3 to 63 of `[a-z0-9-]`, a letter or digit at each end, and no `--` (`-(?!-)`).
    r"^[a-z0-9]([a-z0-9]|-(?!-)){1,61}[a-z0-9]$": _Rewrite(
        r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", lambda value: "--" not in value
    ),
}


def translate(pattern: str) -> str:
    """A Java pattern in RE2's syntax (same meaning, for the constructs the models use)."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            digits = pattern[index + 2 : index + 6]
            if escaped == "u" and len(digits) == 4 and all(d in string.hexdigits for d in digits):
                out.append(f"\\x{{{digits}}}")
                index += 6
                continue
            if escaped in "sS":
                negated = "^" if escaped == "S" else ""
                posix = f"[:{negated}space:]"
                out.append(posix if in_class else f"[{posix}]")
            else:
                out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            # A `]` (after an optional `^`) right after the opening bracket is a literal.
            for lead in ("^", "]"):
                if pattern.startswith(lead, index + 1):
                    out.append(lead)
                    index += 1
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    return options


@functools.cache
def matcher(pattern: str) -> Matcher:
    """Whether a whole string satisfies the model's `pattern`; raises UnsupportedPattern.

    A string that is not valid Unicode (a lone surrogate, which JSON can spell) satisfies no
    pattern."""
    rewrite = _REWRITES.get(pattern) or _Rewrite(translate(pattern))
    try:
        compiled = re2.compile(rewrite.expression, _options())
    except re2.error as exc:
        raise UnsupportedPattern(f"{pattern!r}: {exc}") from None
    condition = rewrite.condition

    def decide(value: str) -> bool:
        try:
            found = compiled.fullmatch(value)
        except UnicodeEncodeError:
            return False
        return found is not None and condition(value)

    return decide


def model_patterns(model: ServiceModel) -> set[str]:
    """Every pattern a model's shapes carry."""
    found: set[str] = set()
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern:
            found.add(pattern)
    return found


def check_model(model: ServiceModel) -> None:
    """Compiles every pattern of a model; raises UnsupportedPattern for one RE2 cannot decide."""
    for pattern in model_patterns(model):
        matcher(pattern)
