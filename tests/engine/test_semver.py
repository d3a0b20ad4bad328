"""Split's semver vectors."""

from __future__ import annotations

import csv

import pytest

from tests.conftest import DATA
from worker.semver import parse_semver

SEMVER = DATA / "semver"


def rows(name: str) -> list[list[str]]:
    with open(SEMVER / name, newline="") as handle:
        return [r for r in csv.reader(handle) if r and not r[0].startswith("#")]


@pytest.mark.parametrize("text", [r[0] for r in rows("invalid-semantic-versions.csv")])
def test_invalid_versions_are_refused(text):
    assert parse_semver(text) is None


@pytest.mark.parametrize(("higher", "lower"), rows("valid-semantic-versions.csv"))
def test_valid_versions_order(higher, lower):
    high, low = parse_semver(higher), parse_semver(lower)
    assert high is not None and low is not None
    assert high > low and low < high and high != low


@pytest.mark.parametrize(("a", "b", "expected"), rows("equal-to-semver.csv"))
def test_equality_compares_normalized_text(a, b, expected):
    assert (parse_semver(a) == parse_semver(b)) is (expected == "true")


@pytest.mark.parametrize(("low", "value", "high", "expected"), rows("between-semver.csv"))
def test_between_is_inclusive(low, value, high, expected):
    v = parse_semver(value)
    assert (parse_semver(low) <= v <= parse_semver(high)) is (expected == "true")
