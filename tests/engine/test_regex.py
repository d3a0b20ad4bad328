"""Split's regex vectors: search semantics, JavaScript's syntax."""

from __future__ import annotations

import pytest

from tests.conftest import DATA
from worker.matchers import _js_regex

LINES = [
    line.rsplit("#", 2)
    for line in (DATA / "regex" / "regex.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


@pytest.mark.parametrize(("pattern", "text", "expected"), LINES)
def test_regex_vector(pattern, text, expected):
    compiled = _js_regex(pattern)
    assert compiled is not None
    assert (compiled.search(text) is not None) is (expected == "true")


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("abc$", "abc\n", False),  # JS: $ is the end of input, not before a final newline
        (r"^\d+$", "\u0661\u0662", False),  # JS: \d is ASCII only
        ("(?<word>ab)c", "abc", True),  # JS named group syntax
        ("(?<=a)b", "ab", True),  # lookbehind is not a named group
        ("[$]x", "$x", True),  # $ inside a class is literal
    ],
)
def test_javascript_regex_semantics(pattern, text, expected):
    compiled = _js_regex(pattern)
    assert compiled is not None
    assert (compiled.search(text) is not None) is expected


def test_a_pattern_that_does_not_compile_is_none():
    assert _js_regex("(unclosed") is None
