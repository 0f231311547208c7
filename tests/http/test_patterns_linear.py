"""Every pattern of every model the AWS front validates with is decided in linear time, and means
what it means in botocore's model (Java's reading of it).

The reference meaning is Python's `re` with ASCII classes (`\\w`, `\\d` and `\\s` are ASCII in
Java as in RE2), which reads every model pattern the way Java does except `\\p{…}` (spelled out
here from `unicodedata`); Python's `re` is only the reference: adversarial inputs are given to
the server's matcher alone.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
import unicodedata

import pytest
from botocore.model import ServiceModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cargohold.http import awsservice, ecr, iam, sts
from cargohold.http.awspatterns import (
    UnsupportedPattern,
    check_model,
    matcher,
    model_patterns,
    translate,
)
from cargohold.http.awsservice import service_model

#: The models the server validates requests with (`app.py` builds one AwsService for each).
SERVED = (ecr.SERVICE, iam.SERVICE, sts.SERVICE)
LENGTH = 10_000
#: The longest a linear matcher may take on 10,000 characters.
BUDGET = 0.050


def _served_patterns() -> list[str]:
    found: set[str] = set()
    for name in SERVED:
        found |= model_patterns(service_model(name))
    return sorted(found)


PATTERNS = _served_patterns()


def test_the_served_models_have_the_patterns_this_suite_knows() -> None:
    # The rewritten patterns (lookarounds, nested counted repetitions) are among them.
    assert len(PATTERNS) > 60
    assert any("(?!" in p for p in PATTERNS) and any("(?=" in p for p in PATTERNS)
    assert any("{0,31}" in p for p in PATTERNS)
    for name in SERVED:
        check_model(service_model(name))


def test_a_pattern_no_linear_engine_reads_is_refused() -> None:
    with pytest.raises(UnsupportedPattern):
        matcher(r"(a+)\1")
    with pytest.raises(UnsupportedPattern):
        matcher(r"(?<=a)b")


# -- linear time ----------------------------------------------------------------------------


def _literals(pattern: str) -> str:
    """The printable ASCII characters a pattern names (besides its syntax)."""
    return "".join(sorted({c for c in pattern if c.isprintable() and c.isascii()} - set("\\")))


def adversarial(pattern: str) -> list[str]:
    """Strings of LENGTH characters that make backtracking engines explode: a long run of
    what the pattern accepts, then one character it refuses; alternations of its own
    characters; a long valid prefix repeated."""
    bad = ["!", "\x00", " ", "\n", "\ud800", "é"]
    found: list[str] = []
    for end in bad:
        found.append("a" * (LENGTH - 1) + end)
        found.append("a-" * ((LENGTH - 1) // 2) + end)
    chars = _literals(pattern)
    for char in chars:
        found.append(char * (LENGTH - 1) + "!")
    for first, second in itertools.pairwise(chars):
        found.append((first + second) * ((LENGTH - 1) // 2) + "\x00")
    found.append(("a." * (LENGTH // 2 - 1)) + "a_")
    found.append("aa/" * (LENGTH // 3) + "!")
    found.append("{" + "a" * (LENGTH - 3) + "}!")
    return found


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_decides_adversarial_input_in_linear_time(pattern: str) -> None:
    decide = matcher(pattern)
    slow: list[tuple[str, float]] = []
    for text in adversarial(pattern):
        assert len(text) >= LENGTH - 2
        started = time.perf_counter()
        decide(text)
        took = time.perf_counter() - started
        if took >= BUDGET:
            # A busy machine can stall any call once; a backtracking engine is slow every time.
            started = time.perf_counter()
            decide(text)
            took = min(took, time.perf_counter() - started)
        if took >= BUDGET:
            slow.append((text[:20] + "…" + text[-3:], took))
    assert not slow, slow


def test_the_reported_repository_filter_is_refused_at_once() -> None:
    pattern = (
        service_model(ecr.SERVICE)
        .operation_model("PutRegistryScanningConfiguration")
        .input_shape.members["rules"]
        .member.members["repositoryFilters"]
        .member.members["filter"]
        .metadata["pattern"]
    )
    decide = matcher(pattern)
    for count in (22, 30, 10_000, 100_000):
        started = time.perf_counter()
        assert not decide("a" * count + "!")
        assert time.perf_counter() - started < BUDGET
    assert decide("a" * 10_000) and decide("team/*") and decide("prod-*")


# -- the same meaning -----------------------------------------------------------------------


@functools.cache
def _category_class(prefix: str) -> str:
    """A Python character class body naming every code point of a Unicode category."""
    ranges: list[tuple[int, int]] = []
    for code in range(0x110000):
        if unicodedata.category(chr(code)).startswith(prefix):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


@functools.cache
def reference(pattern: str) -> re.Pattern[str]:
    """The pattern as Java reads it, in Python's `re`."""
    for category in ("L", "Z", "N"):
        pattern = pattern.replace(f"\\p{{{category}}}", _category_class(category))
    return re.compile(pattern, re.ASCII)


#: Characters tried beside a pattern's own: separators, controls, letters and digits of other
#: scripts (which ASCII `\w` refuses and `\p{L}` accepts), an astral character.
EXTRA = "aZ09-_./:@ \t\n\x0b\x00{}é中ж٣\u2003\u00a0\u0085\U0001f600"


#: A lookaround: `(?!\.{1,2}(?:/|$))`, `(?=.*\{)`.
_LOOKAROUND = re.compile(r"\(\?[=!](?:[^()]|\([^()]*\))*\)")


@functools.cache
def valid_strings(pattern: str) -> st.SearchStrategy[str]:
    """Strings the model's pattern accepts (generated without its lookarounds, then kept if
    the pattern accepts them)."""
    generator = reference(_LOOKAROUND.sub("", pattern))
    return st.from_regex(generator, fullmatch=True).filter(
        lambda text: reference(pattern).fullmatch(text) is not None
    )


#: Some model patterns backtrack exponentially in the reference engine: the strings compared
#: with it stay short.
SHORT = 14


def _equivalent(pattern: str, text: str) -> None:
    expected = reference(pattern).fullmatch(text) is not None
    assert matcher(pattern)(text) is expected, (pattern, text)


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_pattern_accepts_what_the_model_accepts(pattern: str, data: st.DataObject) -> None:
    valid = data.draw(valid_strings(pattern), label="valid")
    assert matcher(pattern)(valid), (pattern, valid)


@pytest.mark.parametrize("pattern", PATTERNS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_pattern_means_what_the_model_means(pattern: str, data: st.DataObject) -> None:
    alphabet = st.sampled_from(_literals(pattern) + EXTRA)
    text = data.draw(st.text(alphabet, max_size=SHORT), label="text")
    _equivalent(pattern, text)
    # A valid string with one character changed: near misses are where rewrites go wrong.
    valid = data.draw(valid_strings(pattern), label="valid")[:SHORT]
    if valid:
        where = data.draw(st.integers(0, len(valid) - 1), label="where")
        _equivalent(pattern, valid[:where] + data.draw(alphabet, label="char") + valid[where:])
        _equivalent(pattern, valid[:where] + valid[where + 1 :])


_SEGMENTS = next(p for p in PATTERNS if p.startswith("^(?!"))
_BRACED = next(p for p in PATTERNS if p.startswith("^(?="))
_DNS = next(p for p in PATTERNS if "{0,31}" in p)
_LABEL = next(p for p in PATTERNS if "-(?!-)" in p)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # The rewritten patterns, at their edges.
        (_SEGMENTS, "a/b.c/..d", True),
        (_SEGMENTS, "a/./b", False),
        (_SEGMENTS, "../a", False),
        (_SEGMENTS, "a/...", True),
        (_SEGMENTS, "a/", False),
        (_BRACED, "a/{x/y}/b", True),
        (_BRACED, "a/b", False),
        (_BRACED, "{a}/..", False),
        (_BRACED, "{}", False),
        (_DNS, ".".join(["a"] * 32), True),
        (_DNS, ".".join(["a"] * 33), False),
        (_DNS, "a" * 63, True),
        (_DNS, "a" * 64, False),
        (_DNS, "a-.b", False),
        (_LABEL, "a-b-c", True),
        (_LABEL, "a--b", False),
        (_LABEL, "ab", False),
        (_LABEL, "a" * 63, True),
        (_LABEL, "a" * 64, False),
        # Java's readings: `\s` counts the vertical tab, `\w` and `\d` are ASCII, `\uXXXX` takes
        # four digits, `\p{L}` is any script's letter.
        (r"^\S+$", "a\x0bb", False),
        (r"[\w+=,.@-]+", "usér", False),
        (r"[\d]+", "٣", False),
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+", "é中 ٣", True),
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+", "a\tb", False),
        (r"[\u0020-\u00FF]+", "a\u00ffb", True),
        (r"[\u0020-\u00FF]+", "a\u0100", False),
        # A string JSON can carry that is not Unicode satisfies no pattern.
        (r"^\S+$", "a\ud800", False),
    ],
)
def test_edges(pattern: str, text: str, expected: bool) -> None:
    assert matcher(pattern)(text) is expected
    assert (reference(pattern).fullmatch(text) is not None) is expected or "\ud800" in text


def test_translation_reads_escapes_as_java_does() -> None:
    assert translate(r"[\u0009\u10000-\u10FFFF]") == r"[\x{0009}\x{1000}0-\x{10FF}FF]"
    assert translate(r"\S+\s[\s\S]") == "[[:^space:]]+[[:space:]][[:space:][:^space:]]"
    assert translate(r"\\u0041") == r"\\u0041"
    assert translate(r"[]a][^]b]") == r"[]a][^]b]"


def test_a_service_whose_model_has_such_a_pattern_is_not_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ServiceModel(
        {
            "metadata": {"protocol": "json", "signingName": "x", "targetPrefix": "X"},
            "operations": {},
            "shapes": {"Name": {"type": "string", "pattern": "(a)\\1"}},
        },
        "x",
    )
    monkeypatch.setattr(awsservice, "service_model", lambda name: model)
    with pytest.raises(UnsupportedPattern):
        awsservice.AwsService("x", {})
