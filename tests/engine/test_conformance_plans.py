"""Split's conformance rollout plans, with the results the official SDKs' own tests expect.

Only the 13-row table ships with its expectations (tests/test_fixture_table.py);
the rows here come from the SDK tests that use these same files:

* PY = splitio/python-client, commit 070447dc19cdd4c177564a6ae05a6e6dbc6efa73
  - tests/engine/test_evaluator.py (rule-based segment files, lines 262-330;
    prerequisites.json, lines 332-375)
  - tests/integration/test_client_e2e.py, InMemoryOldSpecIntegrationTests
    (splitChanges-v1.1.json, lines 807-962)
* JSCL = splitio/javascript-client, commit a47cd7a991bab9edea1ec75f3e4c5266b474c892
  (parent 834894c5 for `split_with_config`, where the file still says "on")
  - src/__tests__/nodeSuites/evaluations.spec.js with src/__tests__/online/node.spec.js
    (splitchanges-matchers.json; segments employees, splitters, developers empty)
  - src/__tests__/browserSuites/evaluations.spec.js (facundo@split.io in splitters)
  - src/__tests__/nodeSuites/impressions.spec.js (labels, lines 82-96)

Segments those plans name but the data lacks are empty, except where the
test loads them (noted per table).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import fixture_segments, load
from worker.evaluator import Evaluator
from worker.plan import Plan

# -- rule-based segments: PY builds a flag "some" in code for these files -------

SOME_FLAG: dict[str, Any] = {
    "name": "some",
    "seed": 12345,
    "killed": False,
    "defaultTreatment": "off",
    "trafficTypeName": "user",
    "status": "ACTIVE",
    "changeNumber": 12,
    "algo": 2,
    "trafficAllocation": 100,
    "trafficAllocationSeed": 1234,
    "configurations": {},
    "conditions": [
        {
            "conditionType": "ROLLOUT",
            "matcherGroup": {
                "combiner": "AND",
                "matchers": [
                    {
                        "keySelector": {"trafficType": "user", "attribute": None},
                        "matcherType": "IN_RULE_BASED_SEGMENT",
                        "negate": False,
                        "userDefinedSegmentMatcherData": {
                            "segmentName": "sample_rule_based_segment"
                        },
                    }
                ],
            },
            "partitions": [{"treatment": "on", "size": 100}, {"treatment": "off", "size": 0}],
            "label": "in rule based segment sample_rule_based_segment",
        },
        {
            "conditionType": "ROLLOUT",
            "matcherGroup": {
                "combiner": "AND",
                "matchers": [
                    {
                        "keySelector": {"trafficType": "user", "attribute": None},
                        "matcherType": "ALL_KEYS",
                        "negate": False,
                    }
                ],
            },
            "partitions": [{"treatment": "on", "size": 0}, {"treatment": "off", "size": 100}],
            "label": "default rule",
        },
    ],
}

RBS_CASES = [
    # file, segments loaded, key (= email attribute), treatment, PY line
    ("rule-based-segments-nested.json", {}, "bilal@split.io", "on"),  # 280
    ("rule-based-segments-nested.json", {}, "mauro@split.io", "off"),  # 283
    (
        "rule-based-segments-excluded-segment.json",
        {"segment1": ["pato@split.io"]},
        "bilal@split.io",
        "on",
    ),  # 303
    (
        "rule-based-segments-excluded-segment.json",
        {"segment1": ["pato@split.io"]},
        "mauro@split.io",
        "off",
    ),  # 305
    (
        "rule-based-segments-excluded-segment.json",
        {"segment1": ["pato@split.io"]},
        "pato@split.io",
        "off",
    ),  # 307
    ("rule-based-segments-excluded-rbs.json", {}, "bilal@split.io", "off"),  # 326
    ("rule-based-segments-excluded-rbs.json", {}, "bilal", "on"),  # 328
    ("rule-based-segments-excluded-rbs.json", {}, "bilal2@split.io", "on"),  # 330
]


@pytest.mark.parametrize(
    ("file", "segments", "key", "treatment"),
    RBS_CASES,
    ids=[f"{c[0][20:-5]}-{c[2]}" for c in RBS_CASES],
)
def test_rule_based_segment_files(file, segments, key, treatment):
    doc = load(f"flags/{file}")
    evaluator = Evaluator(Plan.build([copy.deepcopy(SOME_FLAG)], doc["rbs"]["d"], segments))
    assert evaluator.evaluate(key, "some", {"email": key}).treatment == treatment


def test_rule_based_segment_needs_its_attribute():
    doc = load("flags/rule-based-segments-nested.json")
    evaluator = Evaluator(Plan.build([copy.deepcopy(SOME_FLAG)], doc["rbs"]["d"]))
    result = evaluator.evaluate("bilal@split.io", "some")
    assert (result.treatment, result.label) == ("off", "default rule")


# -- prerequisites.json (PY test_prerequisites; segment-test = {pato@split.io}) -----

PREREQUISITE_CASES = [
    ("bilal@split.io", "test_prereq", {"email": "bilal@split.io"}, "on"),  # 353
    ("bilal@split.io", "test_prereq", {}, "def_treatment"),  # 354
    ("mauro@split.io", "test_prereq", {"email": "mauro@split.io"}, "def_treatment"),  # 357
    ("pato@split.io", "test_prereq", {"email": "pato@split.io"}, "def_treatment"),  # 360
    ("nico@split.io", "test_prereq", {"email": "nico@split.io"}, "on"),  # 363
    ("bilal@split.io", "prereq_chain", {"email": "bilal@split.io"}, "on_whitelist"),  # 366
    ("nico@split.io", "test_prereq", {"email": "nico@split.io"}, "on"),  # 369
    ("pato@split.io", "prereq_chain", {"email": "pato@split.io"}, "on_default"),  # 372
    ("mauro@split.io", "prereq_chain", {"email": "mauro@split.io"}, "on_default"),  # 375
]


@pytest.fixture(scope="module")
def prerequisites() -> Evaluator:
    doc = load("flags/prerequisites.json")
    return Evaluator(
        Plan.build(doc["ff"]["d"], doc["rbs"]["d"], {"segment-test": ["pato@split.io"]})
    )


@pytest.mark.parametrize(("key", "flag", "attributes", "treatment"), PREREQUISITE_CASES)
def test_prerequisites_file(prerequisites, key, flag, attributes, treatment):
    assert prerequisites.evaluate(key, flag, attributes).treatment == treatment


def test_unmet_prerequisite_label(prerequisites):
    result = prerequisites.evaluate("mauro@split.io", "test_prereq", {"email": "mauro@split.io"})
    assert result.label == "prerequisites not met"


# -- splitChanges-v1.1.json (PY InMemoryOldSpecIntegrationTests) ----------------


@pytest.fixture(scope="module")
def old_spec() -> Evaluator:
    doc = load("flags/splitChanges-v1.1.json")
    return Evaluator(Plan.build(doc["splits"], [], fixture_segments()))


@pytest.mark.parametrize(
    ("key", "flag", "treatment", "config"),
    [
        ("user1", "sample_feature", "on", '{"size":15,"test":20}'),  # 128, 212
        ("invalidKey", "sample_feature", "off", None),
        ("invalidKey", "invalid_feature", "control", None),
        ("invalidKey", "killed_feature", "defTreatment", '{"size":15,"defTreatment":true}'),
        ("invalidKey", "all_feature", "on", None),
        ("whitelisted_user", "whitelist_feature", "on", None),
        ("unwhitelisted_user", "whitelist_feature", "off", None),
        ("some_user_key", "invalid_matcher_feature", "control", None),
        ("somekey", "dependency_test", "off", None),
        ("True", "boolean_test", "on", None),
        ("abc4", "regex_test", "on", None),
    ],
)
def test_old_spec_file(old_spec, key, flag, treatment, config):
    result = old_spec.evaluate(key, flag)
    assert (result.treatment, result.config) == (treatment, config)


@pytest.mark.parametrize(
    ("key", "sets", "expected"),
    [
        ("user1", ["set1"], {"sample_feature": "on", "whitelist_feature": "off"}),
        (
            "user1",
            ["set1", "set2", "set4"],
            {"sample_feature": "on", "whitelist_feature": "off", "all_feature": "on"},
        ),
        ("invalidKey", ["set3"], {"killed_feature": "defTreatment"}),
        ("invalidKey", ["set4"], {"all_feature": "on"}),
        ("invalidKey", ["invalid_set"], {}),
        ("invalidKey", [], {}),
    ],
)
def test_old_spec_by_flag_sets(old_spec, key, sets, expected):
    results = old_spec.evaluate_by_sets(key, sets)
    assert {name: r.treatment for name, r in results.items()} == expected


def test_old_spec_fallback_for_a_missing_flag():
    # PY line 849: byFlag fallback_feature -> ("on-local", '{"prop": "val"}'), no impression.
    from worker.evaluator import Fallbacks

    doc = load("flags/splitChanges-v1.1.json")
    fallbacks = Fallbacks.parse(
        {"byFlag": {"fallback_feature": {"treatment": "on-local", "config": '{"prop": "val"}'}}}
    )
    evaluator = Evaluator(Plan.build(doc["splits"], [], fixture_segments()), fallbacks)
    result = evaluator.evaluate("user4321", "fallback_feature")
    assert (result.treatment, result.config) == ("on-local", '{"prop": "val"}')
    assert result.label == "fallback - definition not found"
    assert result.impression is False


# -- splitchanges-matchers.json: the 31-flag plan (JSCL node and browser suites) ---

KEY = "facundo@split.io"
T1 = 1458240947021  # 2016-03-17T18:55:47.021Z

MATCHER_CASES: list[tuple[str, dict[str, Any] | None, str]] = [
    ("whitelist", None, "allowed"),
    ("qc_team", None, "no"),
    ("user_attr_gte_10_and_user_attr2_is_not_foo", None, "off"),
    ("user_attr_gte_10_and_user_attr2_is_not_foo", {"attr": 55, "attr2": "bar"}, "on"),
    ("user_attr_gte_10_and_user_attr2_is_not_foo", {"attr": 55, "attr2": "foo"}, "off"),
    ("user_attr_gte_10_and_user_attr2_is_not_foo", {"attr": 55}, "on"),  # negate on missing
    ("user_account_in_whitelist", None, "off"),
    ("user_account_in_whitelist", {"account": "key_1@split.io"}, "on"),
    ("user_account_in_whitelist", {"account": "key_6@split.io"}, "off"),
    ("user_account_in_segment_all", None, "off"),
    ("user_account_in_segment_all", {"account": "something"}, "on"),
    ("user_attr_btw_datetime_1458240947021_and_1458246884077", {"attr": T1}, "on"),
    ("user_attr_btw_datetime_1458240947021_and_1458246884077", {"attr": 1458237347021}, "off"),
    ("user_attr_btw_datetime_1458240947021_and_1458246884077", {"attr": 1458250484077}, "off"),
    ("user_attr_btw_datetime_1458240947021_and_1458246884077", None, "off"),
    ("user_attr_btw_number_10_and_20", None, "off"),
    ("user_attr_btw_number_10_and_20", {"attr": 9}, "off"),
    ("user_attr_btw_number_10_and_20", {"attr": 21}, "off"),
    ("user_attr_btw_number_10_and_20", {"attr": 15}, "on"),
    ("user_attr_btw_10_and_20", None, "off"),
    ("user_attr_btw_10_and_20", {"attr": 9}, "off"),
    ("user_attr_btw_10_and_20", {"attr": 21}, "off"),
    ("user_attr_btw_10_and_20", {"attr": 15}, "on"),
    ("user_attr_lte_datetime_1458240947021", {"attr": T1}, "on"),
    ("user_attr_lte_datetime_1458240947021", {"attr": 1458150947021}, "on"),
    ("user_attr_lte_datetime_1458240947021", {"attr": 1458244547021}, "off"),
    ("user_attr_lte_datetime_1458240947021", None, "off"),
    ("user_attr_lte_number_10", {"attr": 9}, "on"),
    ("user_attr_lte_number_10", {"attr": 10}, "on"),
    ("user_attr_lte_number_10", {"attr": 11}, "off"),
    ("user_attr_lte_number_10", None, "off"),
    ("user_attr_lte_10", {"attr": 9}, "on"),
    ("user_attr_lte_10", {"attr": 10}, "on"),
    ("user_attr_lte_10", {"attr": 11}, "off"),
    ("user_attr_lte_10", None, "off"),
    ("user_attr_gte_datetime_1458240947021", {"attr": T1}, "on"),
    ("user_attr_gte_datetime_1458240947021", {"attr": 1458244547021}, "on"),
    ("user_attr_gte_datetime_1458240947021", {"attr": 1458237347021}, "off"),
    ("user_attr_gte_datetime_1458240947021", None, "off"),
    ("user_attr_gte_number_10", None, "off"),
    ("user_attr_gte_number_10", {"attr": 10}, "on"),
    ("user_attr_gte_number_10", {"attr": 11}, "on"),
    ("user_attr_gte_number_10", {"attr": 0}, "off"),
    ("user_attr_gte_10", None, "off"),
    ("user_attr_gte_10", {"attr": 10}, "on"),
    ("user_attr_gte_10", {"attr": 11}, "on"),
    ("user_attr_gte_10", {"attr": 0}, "off"),
    ("user_attr_eq_datetime_1458240947021", {"attr": 1458172800000}, "on"),
    ("user_attr_eq_datetime_1458240947021", {"attr": 1458122470000}, "off"),
    ("user_attr_eq_datetime_1458240947021", None, "off"),
    ("user_attr_eq_number_ten", None, "off"),
    ("user_attr_eq_number_ten", {"attr": 10}, "on"),
    ("user_attr_eq_number_ten", {"attr": 9}, "off"),
    ("user_attr_eq_ten", None, "off"),
    ("user_attr_eq_ten", {"attr": 10}, "on"),
    ("user_attr_eq_ten", {"attr": 9}, "off"),
    ("hierarchical_splits_test", None, "on"),
]

BROWSER_CASES: list[tuple[str, dict[str, Any] | None, str | None, str]] = [
    ("blacklist", None, None, "not_allowed"),
    ("splitters", None, None, "on"),
    ("user_account_in_segment_all_50_50", None, None, "higher"),
    ("user_account_in_segment_all_50_50", None, "some_id", "lower"),
    ("user_account_in_segment_all_50_50_2", None, None, "lower"),
    ("user_account_in_segment_all_50_50_2", None, "some_id", "higher"),
    ("employees_between_21_and_50_and_chrome", None, None, "off"),
    ("employees_between_21_and_50_and_chrome", {"age": 21}, None, "off"),
    ("employees_between_21_and_50_and_chrome", {"age": 20, "agent": "chrome"}, None, "off"),
    ("user_account_in_segment_employees", None, None, "off"),
    ("user_account_in_segment_employees", {"account": "key_1@split.io"}, None, "off"),
]


def matchers_plan(splitters: list[str]) -> Evaluator:
    doc = load("flags/splitchanges-matchers.json")
    segments = {"employees": [], "splitters": splitters, "developers": []}
    return Evaluator(Plan.build(doc["ff"]["d"], [], segments))


@pytest.mark.parametrize(("flag", "attributes", "treatment"), MATCHER_CASES)
def test_matchers_plan_node_suite(flag, attributes, treatment):
    assert matchers_plan([]).evaluate(KEY, flag, attributes).treatment == treatment


@pytest.mark.parametrize(("flag", "attributes", "bucketing", "treatment"), BROWSER_CASES)
def test_matchers_plan_browser_suite(flag, attributes, bucketing, treatment):
    evaluator = matchers_plan([KEY])
    assert evaluator.evaluate(KEY, flag, attributes, bucketing_key=bucketing).treatment == treatment


def test_matchers_plan_traffic_allocation_bucket_one_is_in():
    evaluator = matchers_plan([])
    # TA 1 with murmur bucket 1 is inside the allocation; bucket 2 is not.
    assert evaluator.evaluate("aaaaaaklmnbv", "ta_bucket1_test").treatment == "rollout_treatment"
    outside = evaluator.evaluate("nico_test", "ta_bucket1_test")
    assert (outside.treatment, outside.label) == ("default_treatment", "not in split")


def test_matchers_plan_bulk_and_configs():
    evaluator = matchers_plan([])
    results = evaluator.evaluate_many(KEY, ["whitelist", "qc_team", "hierarchical_splits_test"])
    assert {n: r.treatment for n, r in results.items()} == {
        "whitelist": "allowed",
        "qc_team": "no",
        "hierarchical_splits_test": "on",
    }
    pair = ["user_attr_gte_10_and_user_attr2_is_not_foo", "user_account_in_whitelist"]
    attrs = {"age": 21, "attr": 55, "attr2": "foo", "account": "key_1@split.io"}
    assert [r.treatment for r in evaluator.evaluate_many(KEY, pair, attrs).values()] == [
        "off",
        "on",
    ]

    with_config = evaluator.evaluate("a_key", "split_with_config")
    assert with_config.treatment == "on"
    assert with_config.config == (
        '{"color":"brown","dimensions":{"height":12,"width":14},"text":{"inner":"click me"}}'
    )
    plain = evaluator.evaluate("a_key", "split_with_config", {"group": "value_without_config"})
    assert (plain.treatment, plain.config) == ("off", None)
    missing = evaluator.evaluate("a_key", "not_existent_split")
    assert (missing.treatment, missing.config) == ("control", None)


def test_matchers_plan_labels_and_change_numbers():
    evaluator = matchers_plan([])
    result = evaluator.evaluate(KEY, "hierarchical_splits_test")
    assert (result.label, result.change_number) == ("expected label", 2828282828)
    result = evaluator.evaluate(KEY, "split_with_config", bucketing_key="test_buck_key")
    assert (result.label, result.change_number) == ("another expected label", 828282828282)
