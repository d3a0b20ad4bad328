"""Every rule of the evaluator, one behaviour per test."""

from __future__ import annotations

from typing import Any

import pytest

from worker import evaluator as evaluator_module
from worker.evaluator import Evaluator, Fallbacks
from worker.hashing import bucket
from worker.plan import Plan

# -- small builders ------------------------------------------------------------


def matcher(kind: str, attribute: str | None = None, negate: bool = False, **data: Any) -> dict:
    return {
        "keySelector": {"trafficType": "user", "attribute": attribute},
        "matcherType": kind,
        "negate": negate,
        **data,
    }


def condition(*matchers: dict, partitions=(("on", 100),), kind="ROLLOUT", label="rule") -> dict:
    result: dict[str, Any] = {
        "conditionType": kind,
        "matcherGroup": {"combiner": "AND", "matchers": list(matchers)},
        "partitions": [{"treatment": t, "size": s} for t, s in partitions],
    }
    if label is not None:
        result["label"] = label
    return result


def flag(name: str = "f", *conditions: dict, **fields: Any) -> dict:
    return {
        "name": name,
        "trafficTypeName": "user",
        "changeNumber": 7,
        "status": "ACTIVE",
        "killed": False,
        "defaultTreatment": "off",
        "seed": 1,
        "algo": 2,
        "conditions": list(conditions),
        **fields,
    }


def evaluate(
    flags: list[dict],
    key: Any = "k",
    name: str = "f",
    attributes: Any = None,
    rbs: list[dict] = (),
    segments: dict | None = None,
    **kw: Any,
):
    return Evaluator(Plan.build(flags, rbs, segments or {})).evaluate(key, name, attributes, **kw)


def treatment(m: dict, attributes: Any = None, key: str = "k") -> str:
    return evaluate([flag("f", condition(m))], key=key, attributes=attributes).treatment


# -- inputs of matchers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10, "on"),
        (10.0, "on"),
        ("10", "on"),
        (" 10 ", "on"),
        ("0xA", "on"),
        ("1e1", "on"),
        (9.99, "off"),
        ("abc", "off"),
        ([10], "on"),
        (True, "off"),
        (None, "off"),
        ("", "off"),  # JavaScript reads null and "" as 0
    ],
)
def test_numeric_matchers_read_values_as_javascript_numbers(value, expected):
    m = matcher(
        "GREATER_THAN_OR_EQUAL_TO", "n", unaryNumericMatcherData={"dataType": "NUMBER", "value": 10}
    )
    assert treatment(m, {"n": value}) == expected


def test_javascript_null_is_zero_for_numeric_matchers():
    m = matcher("EQUAL_TO", "n", unaryNumericMatcherData={"dataType": "NUMBER", "value": 0})
    assert treatment(m, {"n": None}) == "on"
    assert treatment(m, {}) == "off"  # absent is not null


def test_numeric_matchers_never_match_the_key_itself():
    m = matcher("EQUAL_TO", unaryNumericMatcherData={"dataType": "NUMBER", "value": 5})
    assert treatment(m, key="5") == "off"
    negated = matcher(
        "EQUAL_TO", negate=True, unaryNumericMatcherData={"dataType": "NUMBER", "value": 5}
    )
    assert treatment(negated, key="5") == "on"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, "on"),
        ("42", "on"),
        (42.0, "on"),
        (True, "off"),
        ("", "off"),
        (None, "off"),
        ([], "off"),
    ],
)
def test_string_matchers_read_numbers_as_their_decimal_text(value, expected):
    m = matcher("WHITELIST", "v", whitelistMatcherData={"whitelist": ["42", "true"]})
    result = treatment(m, {"v": value})
    assert result == ("on" if value is True else expected)


def test_a_missing_attribute_is_false_before_negate():
    m = matcher("WHITELIST", "plan", negate=True, whitelistMatcherData={"whitelist": ["pro"]})
    assert treatment(m, {}) == "on"
    assert treatment(m, None) == "on"
    assert treatment(m, {"plan": "pro"}) == "off"


def test_an_empty_attribute_name_means_the_key():
    m = matcher("WHITELIST", "", whitelistMatcherData={"whitelist": ["alice"]})
    assert treatment(m, key="alice") == "on"


@pytest.mark.parametrize(
    ("kind", "rule", "value", "expected"),
    [
        ("EQUAL_TO_SET", ["a", "b"], ["b", "a"], "on"),
        ("EQUAL_TO_SET", ["a", "b"], ["a"], "off"),
        ("CONTAINS_ANY_OF_SET", ["a", "b"], ["z", "b"], "on"),
        ("CONTAINS_ANY_OF_SET", ["a", "b"], ["z"], "off"),
        ("CONTAINS_ALL_OF_SET", ["a", "b"], ["a", "b", "c"], "on"),
        ("CONTAINS_ALL_OF_SET", ["a", "b"], ["a"], "off"),
        ("PART_OF_SET", ["a", "b"], ["a"], "on"),
        ("PART_OF_SET", ["a", "b"], ["a", "c"], "off"),
        ("PART_OF_SET", ["a", "b"], [], "off"),  # an empty list is no input
        ("EQUAL_TO_SET", ["1", "true"], [1, True], "on"),  # elements read as JavaScript strings
        ("CONTAINS_ANY_OF_SET", ["a"], "a", "off"),  # a set matcher needs a list
    ],
)
def test_set_matchers(kind, rule, value, expected):
    m = matcher(kind, "s", whitelistMatcherData={"whitelist": rule})
    assert treatment(m, {"s": value}) == expected


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("STARTS_WITH", "abcdef", "on"),
        ("STARTS_WITH", "zabc", "off"),
        ("ENDS_WITH", "xyz@split.io", "on"),
        ("ENDS_WITH", "split.io.x", "off"),
        ("CONTAINS_STRING", "in the middle", "on"),
        ("CONTAINS_STRING", "nothing", "off"),
    ],
)
def test_string_matchers_match_any_element(kind, value, expected):
    m = matcher(kind, "s", whitelistMatcherData={"whitelist": ["abc", "@split.io", "middle"]})
    assert treatment(m, {"s": value}) == expected


def test_a_null_list_makes_starts_with_false_as_javascript_throws():
    assert treatment(matcher("STARTS_WITH", "s", whitelistMatcherData=None), {"s": "x"}) == "off"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "on"),
        ("true", "on"),
        ("TRUE", "on"),
        (False, "off"),
        ("yes", "off"),
        (1, "off"),
    ],
)
def test_boolean_matcher(value, expected):
    assert (
        treatment(matcher("EQUAL_TO_BOOLEAN", "b", booleanMatcherData=True), {"b": value})
        == expected
    )


def test_boolean_matcher_reads_the_key_case_insensitively_as_java_and_python_do():
    m = matcher("EQUAL_TO_BOOLEAN", booleanMatcherData=True)
    assert treatment(m, key="True") == "on"
    assert treatment(m, key="nope") == "off"


def test_regex_is_search_and_a_broken_pattern_never_matches():
    assert (
        treatment(matcher("MATCHES_STRING", "s", stringMatcherData="b+c"), {"s": "abbbcd"}) == "on"
    )
    broken = matcher("MATCHES_STRING", "s", stringMatcherData="(unclosed")
    assert treatment(broken, {"s": "(unclosed"}) == "off"
    negated = matcher("MATCHES_STRING", "s", negate=True, stringMatcherData="(unclosed")
    assert treatment(negated, {"s": "x"}) == "on"


@pytest.mark.parametrize(
    ("kind", "data", "value", "expected"),
    [
        ("EQUAL_TO_SEMVER", {"stringMatcherData": "1.2.3"}, "1.2.3", "on"),
        ("EQUAL_TO_SEMVER", {"stringMatcherData": "1.2.3"}, "01.2.3", "on"),
        ("EQUAL_TO_SEMVER", {"stringMatcherData": "1.2.3"}, "1.2.3+build", "off"),
        ("GREATER_THAN_OR_EQUAL_TO_SEMVER", {"stringMatcherData": "2.0.0"}, "2.0.0-rc.1", "off"),
        ("GREATER_THAN_OR_EQUAL_TO_SEMVER", {"stringMatcherData": "2.0.0"}, "10.0.0", "on"),
        ("LESS_THAN_OR_EQUAL_TO_SEMVER", {"stringMatcherData": "2.0.0"}, "1.9.9", "on"),
        (
            "BETWEEN_SEMVER",
            {"betweenStringMatcherData": {"start": "1.0.0", "end": "2.0.0"}},
            "2.0.0",
            "on",
        ),
        (
            "BETWEEN_SEMVER",
            {"betweenStringMatcherData": {"start": "1.0.0", "end": "2.0.0"}},
            "2.0.1",
            "off",
        ),
        (
            "IN_LIST_SEMVER",
            {"whitelistMatcherData": {"whitelist": ["1.0.0", "2.0.0"]}},
            "2.0.0",
            "on",
        ),
        (
            "IN_LIST_SEMVER",
            {"whitelistMatcherData": {"whitelist": ["1.0.0", "bad"]}},
            "1.0.0",
            "off",
        ),
        ("EQUAL_TO_SEMVER", {"stringMatcherData": "1.2.3"}, "not.a.version", "off"),
        ("EQUAL_TO_SEMVER", {"stringMatcherData": "bad"}, "1.2.3", "off"),
    ],
)
def test_semver_matchers(kind, data, value, expected):
    assert treatment(matcher(kind, "v", **data), {"v": value}) == expected


# -- DATETIME: epoch milliseconds, truncated on both sides ------------------------

DAY = 86_400_000
NOON = 1_458_216_000_000  # 2016-03-17T12:00:00Z


def datetime_matcher(kind: str, **data: Any) -> dict:
    field = "betweenMatcherData" if kind == "BETWEEN" else "unaryNumericMatcherData"
    return matcher(kind, "t", **{field: {"dataType": "DATETIME", **data}})


def test_datetime_equal_compares_utc_days():
    m = datetime_matcher("EQUAL_TO", value=NOON)
    assert treatment(m, {"t": NOON - 12 * 3_600_000}) == "on"  # midnight, same day
    assert treatment(m, {"t": NOON + 11 * 3_600_000 + 59 * 60_000}) == "on"
    assert treatment(m, {"t": NOON + 12 * 3_600_000}) == "off"  # next day
    assert treatment(m, {"t": (NOON - DAY) // 1000}) == "off"  # seconds are not milliseconds


def test_datetime_comparisons_truncate_both_sides_to_the_minute():
    gte = datetime_matcher("GREATER_THAN_OR_EQUAL_TO", value=NOON + 59_999)
    assert treatment(gte, {"t": NOON}) == "on"  # both truncate to 12:00
    assert treatment(gte, {"t": NOON - 1}) == "off"
    lte = datetime_matcher("LESS_THAN_OR_EQUAL_TO", value=NOON)
    assert treatment(lte, {"t": NOON + 59_999}) == "on"
    between = datetime_matcher("BETWEEN", start=NOON + 30_000, end=NOON + 90_000)
    assert treatment(between, {"t": NOON + 119_999}) == "on"
    assert treatment(between, {"t": NOON + 120_000}) == "off"


# -- flags: order, allocation, partitions, configs ------------------------------


def test_killed_flag_gives_default_before_anything_else():
    result = evaluate(
        [flag("f", condition(matcher("ALL_KEYS")), killed=True, configurations={"off": '{"x":1}'})]
    )
    assert (result.treatment, result.label, result.config) == ("off", "killed", '{"x":1}')


def test_unsupported_matcher_gives_control_for_every_key_after_killed_and_prerequisites():
    odd = matcher("IN_THE_FUTURE")
    plain = [
        flag(
            "f",
            condition(matcher("WHITELIST", whitelistMatcherData={"whitelist": ["k"]})),
            condition(odd),
        )
    ]
    result = evaluate(plain)
    assert (result.treatment, result.label) == ("control", "targeting rule type unsupported by sdk")
    killed = evaluate([flag("f", condition(odd), killed=True)])
    assert killed.label == "killed"
    gated = evaluate([flag("f", condition(odd), prerequisites=[{"n": "missing", "ts": ["on"]}])])
    assert gated.label == "prerequisites not met"
    outside = evaluate([flag("f", condition(odd), trafficAllocation=0)])
    assert outside.label == "targeting rule type unsupported by sdk"  # no allocation check


def test_traffic_allocation_uses_its_own_seed_and_the_bucket_boundary():
    seed = 99
    keys = [f"user{i}" for i in range(200)]
    inside = next(k for k in keys if bucket(k, seed, False) == 30)
    outside = next(k for k in keys if bucket(k, seed, False) == 31)
    f = flag("f", condition(matcher("ALL_KEYS")), trafficAllocation=30, trafficAllocationSeed=seed)
    assert evaluate([f], key=inside).treatment == "on"
    result = evaluate([f], key=outside)
    assert (result.treatment, result.label) == ("off", "not in split")


def test_whitelist_conditions_before_the_first_rollout_skip_the_allocation():
    f = flag(
        "f",
        condition(
            matcher("WHITELIST", whitelistMatcherData={"whitelist": ["vip"]}),
            kind="WHITELIST",
            partitions=(("vip", 100),),
        ),
        condition(matcher("ALL_KEYS")),
        trafficAllocation=0,
    )
    assert evaluate([f], key="vip").treatment == "vip"
    assert evaluate([f], key="other").label == "not in split"


def test_allocation_out_of_range_or_missing_means_everyone():
    for allocation in (None, 100, 150, -5):
        f = flag("f", condition(matcher("ALL_KEYS")), trafficAllocation=allocation)
        assert evaluate([f]).treatment == "on"


def test_partition_is_the_first_whose_running_sum_reaches_the_bucket():
    f = flag(
        "f", condition(matcher("ALL_KEYS"), partitions=(("a", 20), ("b", 0), ("c", 80))), seed=5
    )
    for i in range(100):
        key = f"key{i}"
        expected = "a" if bucket(key, 5, False) <= 20 else "c"
        assert evaluate([f], key=key).treatment == expected


def test_bucketing_key_picks_the_partition_and_matching_key_the_matchers():
    f = flag(
        "f",
        condition(
            matcher("WHITELIST", whitelistMatcherData={"whitelist": ["alice"]}),
            partitions=(("a", 50), ("b", 50)),
        ),
        seed=3,
    )
    treatments = {evaluate([f], key="alice", bucketing_key=f"b{i}").treatment for i in range(40)}
    assert treatments == {"a", "b"}
    assert evaluate([f], key="bob", bucketing_key="alice").treatment == "off"


def test_partitions_that_do_not_sum_to_100_give_control_exception():
    f = flag("f", condition(matcher("ALL_KEYS"), partitions=(("on", 50), ("off", 40))), killed=True)
    result = evaluate([f])
    assert (result.treatment, result.label) == ("control", "exception")


def test_a_condition_without_partitions_gives_the_default():
    f = flag("f", {**condition(matcher("ALL_KEYS")), "partitions": None})
    assert (evaluate([f]).treatment, evaluate([f]).label) == ("off", "default rule")


def test_a_condition_without_a_label_reports_default_rule_as_javascript_does():
    f = flag("f", condition(matcher("ALL_KEYS"), label=None))
    assert evaluate([f]).label == "default rule"


def test_config_is_null_for_an_empty_or_missing_configuration():
    f = flag("f", condition(matcher("ALL_KEYS")), configurations={"on": ""})
    assert evaluate([f]).config is None


def test_legacy_hash_when_algo_is_1_or_missing():
    seeds = {}
    for algo in (1, None, 2):
        f = flag("f", condition(matcher("ALL_KEYS"), partitions=(("a", 50), ("b", 50))), seed=7)
        f["algo"] = algo
        seeds[algo] = [evaluate([f], key=f"u{i}").treatment for i in range(60)]
    assert seeds[1] == seeds[None] != seeds[2]
    assert seeds[1] == ["a" if bucket(f"u{i}", 7, True) <= 50 else "b" for i in range(60)]


def test_impressions_disabled_is_carried():
    assert evaluate(
        [flag("f", condition(matcher("ALL_KEYS")), impressionsDisabled=True)]
    ).impressions_disabled


# -- dependencies, prerequisites, rule-based segments ----------------------------


def depends(on: str, treatments: list[str]) -> dict:
    return matcher(
        "IN_SPLIT_TREATMENT", dependencyMatcherData={"split": on, "treatments": treatments}
    )


def test_dependency_evaluates_the_other_flag_with_the_same_key_and_attributes():
    parent = flag(
        "parent",
        condition(matcher("WHITELIST", "plan", whitelistMatcherData={"whitelist": ["pro"]})),
    )
    child = flag("child", condition(depends("parent", ["on"])))
    assert evaluate([parent, child], name="child", attributes={"plan": "pro"}).treatment == "on"
    assert evaluate([parent, child], name="child", attributes={"plan": "free"}).treatment == "off"


def test_dependency_on_a_missing_flag_sees_control():
    child = flag("child", condition(depends("ghost", ["control"])))
    assert evaluate([child], name="child").treatment == "on"


@pytest.mark.parametrize("shape", ["self", "pair", "prerequisite"])
def test_a_cycle_gives_control_exception(shape):
    if shape == "self":
        flags = [flag("a", condition(depends("a", ["on"])))]
    elif shape == "pair":
        flags = [
            flag("a", condition(depends("b", ["on"]))),
            flag("b", condition(depends("a", ["on"]))),
        ]
    else:
        flags = [
            flag("a", condition(matcher("ALL_KEYS")), prerequisites=[{"n": "b", "ts": ["on"]}]),
            flag("b", condition(matcher("ALL_KEYS")), prerequisites=[{"n": "a", "ts": ["on"]}]),
        ]
    result = evaluate(flags, name="a")
    assert (result.treatment, result.label) == ("control", "exception")


def test_prerequisites_are_checked_in_order_and_a_missing_one_is_unmet():
    on = flag("on_flag", condition(matcher("ALL_KEYS")))
    gated = flag(
        "f",
        condition(matcher("ALL_KEYS"), partitions=(("yes", 100),)),
        prerequisites=[{"n": "on_flag", "ts": ["on"]}, {"n": "missing", "ts": ["on"]}],
    )
    assert evaluate([on, gated]).label == "prerequisites not met"
    gated["prerequisites"] = [{"n": "on_flag", "ts": ["on"]}]
    assert evaluate([on, gated]).treatment == "yes"


def rbs(name: str, *conditions: dict, keys=(), segments=()) -> dict:
    return {
        "name": name,
        "status": "ACTIVE",
        "trafficTypeName": "user",
        "changeNumber": 1,
        "excluded": {"keys": list(keys), "segments": list(segments)},
        "conditions": list(conditions),
    }


def in_rbs(name: str) -> dict:
    return matcher("IN_RULE_BASED_SEGMENT", userDefinedSegmentMatcherData={"segmentName": name})


def test_rule_based_segment_exclusions():
    everyone = condition(matcher("ALL_KEYS"))
    segments = [
        rbs(
            "members",
            everyone,
            keys=["kim"],
            segments=[
                {"type": "standard", "name": "banned"},
                {"type": "rule-based", "name": "bots"},
                {"type": "large", "name": "huge"},
            ],
        ),
        rbs(
            "bots", condition(matcher("STARTS_WITH", whitelistMatcherData={"whitelist": ["bot-"]}))
        ),
    ]
    f = flag("f", condition(in_rbs("members")))
    plan = dict(rbs=segments, segments={"banned": ["lee"]})
    assert evaluate([f], key="ann", **plan).treatment == "on"
    assert evaluate([f], key="kim", **plan).treatment == "off"
    assert evaluate([f], key="lee", **plan).treatment == "off"
    assert evaluate([f], key="bot-7", **plan).treatment == "off"


def test_a_missing_rule_based_segment_is_no_match_and_excluding_a_missing_one_excludes_nobody():
    f = flag("f", condition(in_rbs("ghost")))
    assert evaluate([f]).treatment == "off"
    members = rbs(
        "m", condition(matcher("ALL_KEYS")), segments=[{"type": "rule-based", "name": "ghost"}]
    )
    assert evaluate([flag("f", condition(in_rbs("m")))], rbs=[members]).treatment == "on"


def test_a_rule_based_segment_excluding_itself_is_an_exception():
    loop = rbs(
        "loop", condition(matcher("ALL_KEYS")), segments=[{"type": "rule-based", "name": "loop"}]
    )
    assert evaluate([flag("f", condition(in_rbs("loop")))], rbs=[loop]).label == "exception"


def test_an_unsupported_matcher_inside_a_rule_based_segment_counts_as_a_match():
    odd = rbs("odd", condition(matcher("IN_THE_FUTURE")), keys=["out"])
    f = flag("f", condition(in_rbs("odd")))
    assert evaluate([f], rbs=[odd]).treatment == "on"
    assert evaluate([f], key="out", rbs=[odd]).treatment == "off"


def test_large_segments_are_answered_by_the_membership_the_caller_fetched():
    f = flag(
        "f", condition(matcher("IN_SEGMENT", userDefinedSegmentMatcherData={"segmentName": "big"}))
    )
    plan = Plan.build([f], [], {}, large_segments={"big": 100_000})
    assert plan.large_segments_for(["f"]) == {"big"}
    engine = Evaluator(plan)
    assert engine.evaluate("k", "f", large=frozenset({"big"})).treatment == "on"
    assert engine.evaluate("k", "f").treatment == "off"


def test_large_segments_are_found_through_dependencies_prerequisites_and_rule_based_segments():
    seg = matcher("IN_SEGMENT", userDefinedSegmentMatcherData={"segmentName": "big"})
    flags = [
        flag("leaf", condition(in_rbs("r"))),
        flag("mid", condition(depends("leaf", ["on"]))),
        flag("top", condition(matcher("ALL_KEYS")), prerequisites=[{"n": "mid", "ts": ["on"]}]),
        flag("other", condition(matcher("ALL_KEYS"))),
    ]
    plan = Plan.build(flags, [rbs("r", condition(seg))], {}, large_segments={"big": 10})
    assert plan.large_segments_for(["top"]) == {"big"}
    assert plan.large_segments_for(["other"]) == frozenset()


# -- inputs, fallbacks, bulk ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("", "invalid key"),
        ("   ", "invalid key"),
        ("k" * 251, "invalid key"),
        (None, "invalid key"),
        (True, "invalid key"),
        ([1], "invalid key"),
        ({"matchingKey": "a"}, "invalid key"),
        ({"matchingKey": "a", "bucketingKey": ""}, "invalid key"),
        (float("nan"), "invalid key"),
    ],
)
def test_invalid_keys_give_control_with_a_label_and_no_impression(key, label):
    result = evaluate([flag("f", condition(matcher("ALL_KEYS")))], key=key)
    assert (result.treatment, result.label, result.impression) == ("control", label, False)


def test_valid_keys_are_trimmed_and_numbers_become_text():
    f = flag(
        "f", condition(matcher("WHITELIST", whitelistMatcherData={"whitelist": ["42", "ann"]}))
    )
    assert evaluate([f], key=42).treatment == "on"
    assert evaluate([f], key="  ann ").treatment == "on"
    assert evaluate([f], key={"matchingKey": "ann", "bucketingKey": "x"}).treatment == "on"
    assert evaluate([f], key="k" * 250).label == "default rule"


def test_attributes_must_be_an_object_and_flag_names_not_empty():
    f = [flag("f", condition(matcher("ALL_KEYS")))]
    assert evaluate(f, attributes=[1]).label == "invalid attributes"
    assert evaluate(f, name="  ").label == "invalid flag name"
    assert evaluate(f, name=" f ").treatment == "on"


def test_any_failure_inside_is_control_exception(monkeypatch):
    def explode(flag, evaluation):
        raise ValueError("boom")

    monkeypatch.setattr(evaluator_module, "evaluate_flag", explode)
    result = evaluate([flag("f", condition(matcher("ALL_KEYS")))])
    assert (result.treatment, result.label) == ("control", "exception")


def test_fallbacks_replace_control_per_flag_then_globally():
    fallbacks = Fallbacks.parse(
        {"global": "off_global", "byFlag": {"gone": {"treatment": "on_local", "config": "{}"}}}
    )
    engine = Evaluator(Plan.build([flag("f", condition(matcher("ALL_KEYS")))]), fallbacks)
    gone = engine.evaluate("k", "gone")
    assert (gone.treatment, gone.config, gone.label) == (
        "on_local",
        "{}",
        "fallback - definition not found",
    )
    other = engine.evaluate("k", "other")
    assert (other.treatment, other.config) == ("off_global", None)
    assert engine.evaluate("", "f").treatment == "off_global"  # invalid input too
    assert engine.evaluate("k", "f").treatment == "on"  # a real treatment is untouched


def test_fallbacks_never_apply_inside_a_dependency():
    child = flag("child", condition(depends("ghost", ["control"])))
    engine = Evaluator(Plan.build([child]), Fallbacks.parse({"global": "on"}))
    assert engine.evaluate("k", "child").treatment == "on"  # the dependency still saw control


@pytest.mark.parametrize("raw", [{"global": "bad treatment!"}, {"global": 3}, [1], {"byFlag": []}])
def test_bad_fallbacks_are_refused(raw):
    from worker.evaluator import FallbackError

    with pytest.raises(FallbackError):
        Fallbacks.parse(raw)


def test_bulk_evaluates_each_flag_once_even_when_others_depend_on_it(monkeypatch):
    calls: list[str] = []
    real = evaluator_module.evaluate_flag

    def counting(flag, evaluation):
        calls.append(flag.name)
        return real(flag, evaluation)

    monkeypatch.setattr(evaluator_module, "evaluate_flag", counting)
    base = flag("base", condition(matcher("ALL_KEYS")))
    users = [flag(f"u{i}", condition(depends("base", ["on"]))) for i in range(5)]
    results = Evaluator(Plan.build([base, *users])).evaluate_many(
        "k", ["base", *[u["name"] for u in users], "base"]
    )
    assert set(results) == {"base", "u0", "u1", "u2", "u3", "u4"}
    assert calls.count("base") == 1 and len(calls) == 6


def test_bulk_by_flag_sets_normalizes_names():
    flags = [
        flag("a", condition(matcher("ALL_KEYS")), sets=["front"]),
        flag("b", condition(matcher("ALL_KEYS")), sets=["back"]),
    ]
    engine = Evaluator(Plan.build(flags))
    assert set(engine.evaluate_by_sets("k", [" FRONT ", "bad set!", "back"])) == {"a", "b"}
    assert engine.evaluate_by_sets("k", ["nothing"]) == {}
