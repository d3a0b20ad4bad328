"""Deterministic rollout plans for the benchmarks (pure Python, no dependencies).

The same builders run in CPython and inside Pyodide, so the figures compare
like with like.
"""

from __future__ import annotations

import random
from typing import Any

KEYS = [f"user-{i:05d}" for i in range(2000)]


def _matcher(kind: str, attribute: str | None = None, **data: Any) -> dict[str, Any]:
    return {
        "keySelector": {"trafficType": "user", "attribute": attribute},
        "matcherType": kind,
        "negate": False,
        **data,
    }


def _condition(
    matchers: list[dict[str, Any]],
    partitions: list[tuple[str, int]],
    label: str,
    kind: str = "ROLLOUT",
) -> dict[str, Any]:
    return {
        "conditionType": kind,
        "matcherGroup": {"combiner": "AND", "matchers": matchers},
        "partitions": [{"treatment": t, "size": s} for t, s in partitions],
        "label": label,
    }


def _flag(
    name: str, conditions: list[dict[str, Any]], rng: random.Random, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "trafficTypeName": "user",
        "changeNumber": 1_700_000_000_000,
        "status": "ACTIVE",
        "killed": False,
        "defaultTreatment": "off",
        "seed": rng.randint(-(2**31), 2**31 - 1),
        "algo": 2,
        "trafficAllocation": 100,
        "trafficAllocationSeed": rng.randint(-(2**31), 2**31 - 1),
        "conditions": conditions,
        "configurations": {"on": '{"color":"green"}'},
        **extra,
    }


def typical_flag(name: str, rng: random.Random, segment: str = "beta") -> dict[str, Any]:
    """A flag as teams write them: a QA whitelist, a segment, an attribute rule, a 50/50 rollout."""
    return _flag(
        name,
        [
            _condition(
                [_matcher("WHITELIST", whitelistMatcherData={"whitelist": ["qa-1", "qa-2"]})],
                [("on", 100)],
                "whitelisted",
                "WHITELIST",
            ),
            _condition(
                [_matcher("IN_SEGMENT", userDefinedSegmentMatcherData={"segmentName": segment})],
                [("on", 100)],
                "in segment beta",
            ),
            _condition(
                [
                    _matcher(
                        "WHITELIST", "plan", whitelistMatcherData={"whitelist": ["enterprise"]}
                    ),
                    _matcher(
                        "GREATER_THAN_OR_EQUAL_TO",
                        "seats",
                        unaryNumericMatcherData={"dataType": "NUMBER", "value": 50},
                    ),
                ],
                [("on", 100)],
                "big enterprise",
            ),
            _condition([_matcher("ALL_KEYS")], [("on", 50), ("off", 50)], "default rule"),
        ],
        rng,
    )


def single_flag_plan() -> dict[str, Any]:
    rng = random.Random(1)
    return {
        "flags": [typical_flag("checkout", rng)],
        "segments": {"beta": KEYS[:200]},
        "names": ["checkout"],
    }


def bulk_plan(count: int = 50) -> dict[str, Any]:
    rng = random.Random(2)
    flags = [typical_flag(f"flag_{i:02d}", rng, segment=f"seg_{i % 5}") for i in range(count)]
    segments = {f"seg_{i}": rng.sample(KEYS, 300) for i in range(5)}
    return {"flags": flags, "segments": segments, "names": [f["name"] for f in flags]}


def segment_heavy_plan(segments: int = 20, size: int = 10_000) -> dict[str, Any]:
    """One flag whose key is looked up in 20 segments of 10,000 keys before the rollout."""
    rng = random.Random(3)
    members = {
        f"segment_{i:02d}": [f"member-{i}-{j}" for j in range(size)] for i in range(segments)
    }
    conditions = [
        _condition(
            [_matcher("IN_SEGMENT", userDefinedSegmentMatcherData={"segmentName": name})],
            [("on", 100)],
            f"in {name}",
        )
        for name in members
    ]
    conditions.append(_condition([_matcher("ALL_KEYS")], [("on", 10), ("off", 90)], "default rule"))
    return {
        "flags": [_flag("segmented", conditions, rng)],
        "segments": members,
        "names": ["segmented"],
    }


def dependency_chain_plan(depth: int = 10) -> dict[str, Any]:
    """flag_9 depends on flag_8 ... on flag_0: one evaluation walks the whole chain."""
    rng = random.Random(4)
    flags = [
        _flag(
            "chain_0", [_condition([_matcher("ALL_KEYS")], [("on", 90), ("off", 10)], "root")], rng
        )
    ]
    for i in range(1, depth):
        dependency = _matcher(
            "IN_SPLIT_TREATMENT",
            dependencyMatcherData={"split": f"chain_{i - 1}", "treatments": ["on"]},
        )
        flags.append(
            _flag(
                f"chain_{i}", [_condition([dependency], [("on", 90), ("off", 10)], "chained")], rng
            )
        )
    return {"flags": flags, "segments": {}, "names": [f"chain_{depth - 1}"]}


CASES = {
    "single flag": single_flag_plan,
    "50-flag bulk": bulk_plan,
    "segment-heavy": segment_heavy_plan,
    "dependency chain (10)": dependency_chain_plan,
}
ATTRIBUTES = {"plan": "enterprise", "seats": 20}


def run_flagedge(case: str, iterations: int, clock: Any) -> float:
    """Microseconds per evaluation of flagedge on ``case`` (also used inside Pyodide)."""
    from worker.evaluator import Evaluator
    from worker.plan import Plan

    spec = CASES[case]()
    evaluator = Evaluator(Plan.build(spec["flags"], [], spec["segments"]))
    names = spec["names"]
    keys = KEYS
    started = clock()
    if len(names) == 1:
        name = names[0]
        for i in range(iterations):
            evaluator.evaluate(keys[i % 2000], name, ATTRIBUTES)
    else:
        for i in range(iterations):
            evaluator.evaluate_many(keys[i % 2000], names, ATTRIBUTES)
    return (clock() - started) / iterations * 1e6
