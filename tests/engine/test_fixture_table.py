"""The 13-row table shipped with Split's conformance data, on the engine directly."""

from __future__ import annotations

import pytest

from tests.conftest import TABLE, fixture_segments, load
from worker.evaluator import Evaluator
from worker.plan import Plan


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    doc = load("flags/splitChanges-v1.3.json")
    return Evaluator(Plan.build(doc["ff"]["d"], doc["rbs"]["d"], fixture_segments()))


@pytest.mark.parametrize(
    ("key", "flag", "attributes", "treatment"), TABLE, ids=[f"{k}-{f}" for k, f, _, _ in TABLE]
)
def test_fixture_row_gives_listed_treatment(evaluator, key, flag, attributes, treatment):
    assert evaluator.evaluate(key, flag, attributes).treatment == treatment


def test_unknown_flag_is_control_definition_not_found(evaluator):
    result = evaluator.evaluate("user1", "no_such_flag")
    assert (result.treatment, result.label) == ("control", "definition not found")
    assert result.impression is False


def test_config_is_the_flags_json_string_for_the_treatment(evaluator):
    result = evaluator.evaluate("user1", "sample_feature")
    assert result.config == '{"size":15,"test":20}'
    assert result.change_number == 123


def test_killed_flag_gives_default_treatments_config(evaluator):
    result = evaluator.evaluate("invalidKey", "killed_feature")
    assert (result.treatment, result.label) == ("defTreatment", "killed")
    assert result.config == '{"size":15,"defTreatment":true}'


def test_the_old_spec_plan_evaluates_the_same(evaluator):
    doc = load("flags/splitChanges-v1.1.json")
    old = Evaluator(Plan.build(doc["splits"], [], fixture_segments()))
    for key, flag, attributes, treatment in TABLE:
        if flag in old.plan.flags:
            assert old.evaluate(key, flag, attributes).treatment == treatment, (key, flag)
