"""Shared fixtures: Split's conformance data, the fake Split API, local stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_split import FakeSplit
from worker.sql import SqliteSql
from worker.store import PlanStore

DATA = Path(__file__).parent / "data" / "split"
ROOT = Path(__file__).resolve().parent.parent

# The table in tests/data/split/README.md: key, flag, attributes, treatment.
TABLE = [
    ("user1", "sample_feature", None, "on"),
    ("invalidKey", "sample_feature", None, "off"),
    ("invalidKey", "killed_feature", None, "defTreatment"),
    ("invalidKey", "all_feature", None, "on"),
    ("whitelisted_user", "whitelist_feature", None, "on"),
    ("unwhitelisted_user", "whitelist_feature", None, "off"),
    ("somekey", "dependency_test", None, "off"),
    ("True", "boolean_test", None, "on"),
    ("abc4", "regex_test", None, "on"),
    ("bilal@split.io", "rbs_feature_flag", {"email": "bilal@split.io"}, "on"),
    ("mauro@split.io", "rbs_feature_flag", {"email": "mauro@split.io"}, "off"),
    ("abc4", "prereq_feature", None, "on"),
    ("user1234", "prereq_feature", None, "off_default"),
]


def load(relative: str) -> Any:
    return json.loads((DATA / relative).read_text())


def fixture_segments() -> dict[str, list[str]]:
    segments = {}
    for name in ("employees", "human_beigns"):
        doc = load(f"segments/segmentChanges-{name}.json")
        segments[doc["name"]] = doc["added"]
    return segments


@pytest.fixture
def fake_split() -> Iterator[FakeSplit]:
    fake = FakeSplit().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def plan_store(tmp_path: Path) -> PlanStore:
    return PlanStore(SqliteSql(tmp_path / "store.sqlite3"))


@pytest.fixture
def fake_events():
    from tests.support.fake_events import FakeEvents

    fake = FakeEvents().start()
    try:
        yield fake
    finally:
        fake.stop()
