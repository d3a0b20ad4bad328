"""Both hash algorithms against every row of Split's hashing vectors."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import DATA
from worker.hashing import bucket, legacy_hash, murmur3_32, murmur3_32_pure

MURMUR_FILES = [
    "murmur3-sample-data-v2.csv",  # 100,000 rows
    "murmur3-custom-uuids.csv",
    "murmur3-sample-v3.csv",
    "murmur3-sample-v4.csv",  # a negative seed
]


def murmur_rows(name: str) -> list[tuple[int, str, int, int]]:
    with open(DATA / "hashing" / name, newline="", encoding="utf-8") as handle:
        return [(int(s), k, int(h), int(b)) for s, k, h, b in csv.reader(handle)]


@pytest.mark.parametrize("name", MURMUR_FILES)
def test_murmur3_and_its_bucket_match_every_row(name):
    rows = murmur_rows(name)
    wrong = [r for r in rows if murmur3_32(r[1], r[0]) != r[2] or bucket(r[1], r[0], False) != r[3]]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("name", MURMUR_FILES)
def test_pure_python_murmur3_matches_every_row(name):
    # What the Worker runs: Pyodide has no mmh3 wheel.
    rows = murmur_rows(name)
    wrong = [r for r in rows if murmur3_32_pure(r[1], r[0]) != r[2]]
    assert not wrong, wrong[:5]


def test_legacy_hash_and_bucket_match_every_row():
    rows = [json.loads(line) for line in (DATA / "hashing" / "legacy-sample-data.jsonl").open()]
    assert len(rows) == 10_000
    wrong = [r for r in rows if legacy_hash(r[1], r[0]) != r[2] or bucket(r[1], r[0], True) != r[3]]
    assert not wrong, wrong[:5]


# Derived by hand from Java's String.hashCode: h = 31*h + unit over UTF-16 code
# units with int32 wrap-around, then h ^ seed; bucket = |h % 100| + 1. A
# character outside the BMP is two units (a surrogate pair), e.g. U+1F600 is
# 0xD83D 0xDE00: 31 * 55357 + 56832 = 1772899. (Split's Python SDK hashes code
# points instead and gets another bucket for these keys.)
SURROGATE_VECTORS = [
    ("\U0001f600", 0, 1772899, 100),
    ("a\U0001f600", 12345, 1853885, 86),
    ("\U0001f600" * 8, -52311562, -1132900370, 71),  # wraps around int32
    ("user-\U00010348-\u00e9", 467569525, 1835184915, 16),
    ("\U0010ffff", 1, 1803233, 34),
]


@pytest.mark.parametrize(("key", "seed", "hash_", "bucket_"), SURROGATE_VECTORS)
def test_legacy_hash_counts_utf16_code_units_like_java(key, seed, hash_, bucket_):
    assert legacy_hash(key, seed) == hash_
    assert bucket(key, seed, True) == bucket_


def test_murmur_hashes_utf8_bytes_of_non_ascii_keys_alike():
    for key in ("\u00e9t\u00e9", "\U0001f600", "\u4e2d\u6587"):
        assert murmur3_32(key, 42) == murmur3_32_pure(key, 42)
