"""Random histories of changes, random faults, random budgets.

After every run that reports ``ok`` the store equals the server's state;
after any other run whatever the store shows is a whole plan (every segment
it names is there); and once faults stop, runs converge to the server.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import SyncLimits
from sync.splitapi import RetryPolicy
from tests.support.fake_split import FakeSplit
from tests.sync.helpers import FakeClock, assert_store_equals_server, stored, sync
from worker.splitdata import segment_refs
from worker.sql import SqliteSql
from worker.store import PlanStore

SEGMENTS = ["s1", "s2", "s3", "s4"]
FLAGS = ["f1", "f2", "f3", "f4", "f5"]
KEYS = [f"k{i}" for i in range(12)]


def flag(name: str, segments: list[str], treatment: str) -> dict[str, Any]:
    matchers = [
        {
            "keySelector": None,
            "matcherType": "IN_SEGMENT",
            "negate": False,
            "userDefinedSegmentMatcherData": {"segmentName": s},
        }
        for s in segments
    ]
    matchers.append({"keySelector": None, "matcherType": "ALL_KEYS", "negate": False})
    return {
        "name": name,
        "trafficTypeName": "user",
        "status": "ACTIVE",
        "killed": False,
        "defaultTreatment": "off",
        "seed": 3,
        "algo": 2,
        "conditions": [
            {
                "conditionType": "ROLLOUT",
                "matcherGroup": {"combiner": "AND", "matchers": matchers},
                "partitions": [{"treatment": treatment, "size": 100}],
            }
        ],
    }


def rbs(name: str, segment: str, excluded: str) -> dict[str, Any]:
    return {
        "name": name,
        "trafficTypeName": "user",
        "status": "ACTIVE",
        "excluded": {"keys": ["k0"], "segments": [{"type": "standard", "name": excluded}]},
        "conditions": [
            {
                "matcherGroup": {
                    "combiner": "AND",
                    "matchers": [
                        {
                            "keySelector": None,
                            "matcherType": "IN_SEGMENT",
                            "negate": False,
                            "userDefinedSegmentMatcherData": {"segmentName": segment},
                        }
                    ],
                }
            }
        ],
    }


operations = st.one_of(
    st.tuples(
        st.just("flag"),
        st.sampled_from(FLAGS),
        st.lists(st.sampled_from(SEGMENTS), max_size=2),
        st.sampled_from(["on", "off", "a"]),
    ),
    st.tuples(st.just("archive"), st.sampled_from(FLAGS)),
    st.tuples(
        st.just("rbs"),
        st.sampled_from(["r1", "r2"]),
        st.sampled_from(SEGMENTS),
        st.sampled_from(SEGMENTS),
    ),
    st.tuples(st.just("archive_rbs"), st.sampled_from(["r1", "r2"])),
    st.tuples(
        st.just("segment"),
        st.sampled_from(SEGMENTS),
        st.lists(st.sampled_from(KEYS), max_size=4),
        st.lists(st.sampled_from(KEYS), max_size=3),
    ),
)


def apply(fake: FakeSplit, operation: tuple[Any, ...]) -> None:
    kind = operation[0]
    if kind == "flag":
        fake.put_flag(flag(operation[1], operation[2], operation[3]))
    elif kind == "archive" and operation[1] in fake.definitions("ff", active_only=True):
        fake.archive_flag(operation[1])
    elif kind == "rbs":
        fake.put_rbs(rbs(operation[1], operation[2], operation[3]))
    elif kind == "archive_rbs" and operation[1] in fake.definitions("rbs", active_only=True):
        fake.archive_rbs(operation[1])
    elif kind == "segment":
        fake.change_segment(operation[1], added=operation[2], removed=operation[3])


def assert_whole(store: PlanStore) -> None:
    """Whatever is visible names only segments that are present."""
    have = stored(store)
    named = set()
    for body in [*have["flags"].values(), *have["rbs"].values()]:
        named.update(segment_refs(body))
    assert named <= set(have["segments"]), named - set(have["segments"])


@settings(
    max_examples=int(os.environ.get("FLAGEDGE_SYNC_EXAMPLES", "40")),
    derandomize=not os.environ.get("FLAGEDGE_HYPOTHESIS_RANDOM"),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    history=st.lists(st.lists(operations, max_size=6), min_size=1, max_size=6),
    page_size=st.integers(1, 4),
    fail_rate=st.sampled_from([0.0, 0.0, 0.15, 0.35]),
    budgets=st.lists(st.sampled_from([1000, 1000, 9, 14]), min_size=6, max_size=6),
    seed=st.integers(0, 1000),
)
def test_random_histories_with_faults_keep_the_store_equal_to_split(
    history, page_size, fail_rate, budgets, seed
):
    fake = FakeSplit(page_size=page_size, fail_rate=fail_rate, seed=seed).start()
    store = PlanStore(SqliteSql(":memory:"))
    clock = FakeClock()
    retry = RetryPolicy(attempts=3, request_timeout_s=0.5)
    try:
        for step, batch in enumerate(history):
            for operation in batch:
                apply(fake, operation)
            report = sync(
                fake, store, clock, limits=SyncLimits(subrequests=budgets[step]), retry=retry
            )
            clock.now += 60
            if report.outcome == "ok":
                assert_store_equals_server(store, fake)
            else:
                assert report.outcome in ("partial", "failed"), report
                assert_whole(store)

        fake.fail_rate = 0.0
        for _ in range(10):
            if sync(fake, store, clock, retry=retry).outcome == "ok":
                break
        assert_store_equals_server(store, fake)
    finally:
        fake.stop()
