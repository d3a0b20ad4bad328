"""The synchronizer follows Split's protocol and keeps the store equal to Split."""

from __future__ import annotations

import copy
from typing import Any

from sync import SyncLimits
from tests.conftest import fixture_segments, load
from tests.sync.helpers import FakeClock, assert_store_equals_server, stored, sync
from worker.store import PlanStore


def flag(
    name: str, *segments: str, sets: list[str] | None = None, treatment: str = "on"
) -> dict[str, Any]:
    matchers = [
        {
            "keySelector": {"trafficType": "user", "attribute": None},
            "matcherType": "IN_SEGMENT",
            "negate": False,
            "userDefinedSegmentMatcherData": {"segmentName": s},
        }
        for s in segments
    ]
    matchers = matchers or [{"keySelector": None, "matcherType": "ALL_KEYS", "negate": False}]
    return {
        "name": name,
        "trafficTypeName": "user",
        "status": "ACTIVE",
        "killed": False,
        "defaultTreatment": "off",
        "seed": 1,
        "algo": 2,
        "sets": sets or [],
        "conditions": [
            {
                "conditionType": "ROLLOUT",
                "matcherGroup": {"combiner": "AND", "matchers": matchers},
                "partitions": [{"treatment": treatment, "size": 100}],
                "label": "l",
            }
        ],
    }


def rbs(name: str, condition_segment: str, excluded_segment: str) -> dict[str, Any]:
    return {
        "name": name,
        "trafficTypeName": "user",
        "status": "ACTIVE",
        "excluded": {"keys": [], "segments": [{"type": "standard", "name": excluded_segment}]},
        "conditions": [
            {
                "matcherGroup": {
                    "combiner": "AND",
                    "matchers": [
                        {
                            "keySelector": None,
                            "matcherType": "IN_SEGMENT",
                            "negate": False,
                            "userDefinedSegmentMatcherData": {"segmentName": condition_segment},
                        }
                    ],
                }
            }
        ],
    }


def test_first_sync_pages_every_cursor_to_till(fake_split, plan_store):
    fake_split.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    fake_split.page_size = 2
    report = sync(fake_split, plan_store)
    assert report.outcome == "ok" and report.published
    assert_store_equals_server(plan_store, fake_split)
    pages = [p for path, p in fake_split.requests if path.endswith("splitChanges")]
    assert (pages[0]["since"], pages[0]["rbSince"]) == ("-1", "-1")
    assert pages[-1]["since"] == str(fake_split.till("ff"))  # the last page: since == till
    assert len(pages) == 6  # 9 flags, 2 a page, then one empty page


def test_an_unchanged_environment_costs_one_request_per_cursor_and_publishes_nothing(
    fake_split, plan_store
):
    fake_split.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    first = sync(fake_split, plan_store)
    fake_split.requests.clear()
    again = sync(fake_split, plan_store)
    assert again.outcome == "ok" and not again.published
    assert again.version == first.version
    paths = [path for path, _ in fake_split.requests]
    assert paths.count("/api/splitChanges") == 1
    assert sorted(p for p in paths if "segmentChanges" in p) == [
        "/api/segmentChanges/employees",
        "/api/segmentChanges/human_beigns",
    ]


def test_changes_archives_and_segment_updates_are_applied_in_one_publication(
    fake_split, plan_store
):
    fake_split.put_flag(flag("a", "seg1"))
    fake_split.put_flag(flag("b"))
    fake_split.change_segment("seg1", added=["k1", "k2", "k3"])
    assert sync(fake_split, plan_store).outcome == "ok"
    version = stored(plan_store)["version"]

    fake_split.put_flag(flag("a", "seg1", treatment="changed"))
    fake_split.archive_flag("b")
    fake_split.change_segment("seg1", added=["k4"], removed=["k1"])
    report = sync(fake_split, plan_store)
    assert report.outcome == "ok"
    assert stored(plan_store)["version"] == version + 1
    assert_store_equals_server(plan_store, fake_split)
    assert "b" not in stored(plan_store)["flags"]


def test_segments_are_found_in_rule_based_segments_and_their_exclusions(fake_split, plan_store):
    fake_split.put_rbs(rbs("members", "in_cond", "excluded_seg"))
    fake_split.change_segment("in_cond", added=["x"])
    fake_split.change_segment("excluded_seg", added=["y"])
    fake_split.change_segment("nobody_names_me", added=["z"])
    assert sync(fake_split, plan_store).outcome == "ok"
    assert set(stored(plan_store)["segments"]) == {"in_cond", "excluded_seg"}
    assert_store_equals_server(plan_store, fake_split)


def test_a_segment_is_dropped_only_when_nothing_names_it(fake_split, plan_store):
    fake_split.put_flag(flag("a", "shared"))
    fake_split.put_flag(flag("b", "shared"))
    fake_split.change_segment("shared", added=["k"])
    sync(fake_split, plan_store)
    fake_split.archive_flag("a")
    sync(fake_split, plan_store)
    assert "shared" in stored(plan_store)["segments"]
    fake_split.archive_flag("b")
    sync(fake_split, plan_store)
    assert stored(plan_store)["segments"] == {}


def test_flag_sets_filter_what_is_stored_and_are_sent_lowercased_and_sorted(fake_split, plan_store):
    fake_split.put_flag(flag("web_flag", sets=["web"]))
    fake_split.put_flag(flag("ios_flag", sets=["ios"]))
    fake_split.put_flag(flag("both", sets=["web", "ios"]))
    report = sync(fake_split, plan_store, flag_sets=("api", "web"))
    assert report.outcome == "ok"
    assert set(stored(plan_store)["flags"]) == {"web_flag", "both"}
    assert all(
        p.get("sets") == "api,web" for path, p in fake_split.requests if "splitChanges" in path
    )

    moved = copy.deepcopy(flag("web_flag", sets=["ios"]))
    fake_split.put_flag(moved)  # it left the set: it must leave the store
    sync(fake_split, plan_store, flag_sets=("api", "web"))
    assert set(stored(plan_store)["flags"]) == {"both"}
    assert_store_equals_server(plan_store, fake_split, ("api", "web"))


def test_a_new_sdk_key_rebuilds_from_scratch_while_the_old_plan_serves(fake_split, plan_store):
    fake_split.put_flag(flag("old"))
    sync(fake_split, plan_store)
    version = stored(plan_store)["version"]

    # The same server now answers only a new key (think: a new environment).
    fake_split.sdk_key = "new-key"
    fake_split.archive_flag("old")
    for i in range(6):
        fake_split.put_flag(flag(f"new{i}", f"seg{i}"))
        fake_split.change_segment(f"seg{i}", added=[f"k{i}"])
    fake_split.page_size = 2
    fake_split.requests.clear()
    tight = SyncLimits(subrequests=6)
    partial = sync(fake_split, plan_store, sdk_key="new-key", limits=tight)
    assert partial.outcome == "partial"
    assert fake_split.requests[0][1]["since"] == "-1"  # rebuilt from the start
    assert set(stored(plan_store)["flags"]) == {"old"} and stored(plan_store)["version"] == version

    for _ in range(20):  # each run continues where the last stopped
        report = sync(fake_split, plan_store, sdk_key="new-key", limits=tight)
        if stored(plan_store)["version"] != version:
            break
        assert set(stored(plan_store)["flags"]) == {"old"}  # still the old plan, whole
    assert report.pending == []
    assert_store_equals_server(plan_store, fake_split)
    assert stored(plan_store)["version"] == version + 1  # one publication, all of it at once
    assert sync(fake_split, plan_store, sdk_key="new-key").outcome == "ok"


def test_a_run_out_of_budget_goes_on_next_time_without_publishing_half(fake_split, plan_store):
    fake_split.page_size = 1
    for i in range(8):
        fake_split.put_flag(flag(f"f{i}", f"s{i % 3}"))
    for i in range(3):
        fake_split.change_segment(f"s{i}", added=[f"a{i}"])
        fake_split.change_segment(f"s{i}", added=[f"b{i}"])
    limits = SyncLimits(subrequests=5)
    outcomes = []
    for _ in range(30):
        report = sync(fake_split, plan_store, limits=limits)
        outcomes.append(report.outcome)
        assert report.requests <= limits.subrequests
        if stored(plan_store)["version"]:  # whatever is visible is the whole plan
            assert_store_equals_server(plan_store, fake_split)
        if not report.pending and stored(plan_store)["version"]:
            break
    assert "partial" in outcomes and outcomes.count("partial") > 3
    assert_store_equals_server(plan_store, fake_split)
    assert sync(fake_split, plan_store).outcome == "ok"  # a roomier budget finishes a cycle


def test_a_changed_flag_waits_for_its_new_segment(fake_split, plan_store):
    fake_split.put_flag(flag("f"))
    sync(fake_split, plan_store)
    fake_split.page_size = 1
    fake_split.put_flag(flag("f", "big"))
    for i in range(4):
        fake_split.change_segment("big", added=[f"k{i}"])
    report = sync(fake_split, plan_store, limits=SyncLimits(subrequests=5))
    assert report.outcome == "partial"
    old = stored(plan_store)["flags"]["f"]
    assert old["conditions"][0]["matcherGroup"]["matchers"][0]["matcherType"] == "ALL_KEYS"
    while sync(fake_split, plan_store, limits=SyncLimits(subrequests=5)).outcome != "ok":
        pass
    assert_store_equals_server(plan_store, fake_split)


def test_a_proxy_without_spec_1_3_gets_1_1_and_is_probed_again_a_day_later(fake_split, plan_store):
    fake_split.proxy_without_13 = True
    fake_split.put_flag(flag("f"))
    clock = FakeClock()
    report = sync(fake_split, plan_store, clock)
    assert report.outcome == "ok"
    specs = [p["s"] for path, p in fake_split.requests if "splitChanges" in path]
    assert specs[:2] == ["1.3", "1.1"] and all(
        "rbSince" not in p
        for path, p in fake_split.requests
        if "splitChanges" in path and p["s"] == "1.1"
    )
    assert_store_equals_server(plan_store, fake_split)

    fake_split.requests.clear()
    sync(fake_split, plan_store, clock)  # within the day: straight to 1.1
    assert {p["s"] for path, p in fake_split.requests if "splitChanges" in path} == {"1.1"}

    fake_split.proxy_without_13 = False
    fake_split.put_rbs(rbs("r", "c", "e"))
    fake_split.requests.clear()
    clock.now += 24 * 3600
    report = sync(fake_split, plan_store, clock)
    assert report.outcome == "ok"
    first = next(p for path, p in fake_split.requests if "splitChanges" in path)
    assert (first["s"], first["since"], first["rbSince"]) == ("1.3", "-1", "-1")
    assert_store_equals_server(plan_store, fake_split)


def test_the_status_records_each_run(fake_split, plan_store):
    fake_split.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    clock = FakeClock()
    sync(fake_split, plan_store, clock)
    status = plan_store.status()
    assert status["counts"] == {"flags": 9, "rule_based_segments": 1, "segments": 2, "keys": 4}
    run = status["sync"]
    assert run["outcome"] == "ok" and run["error"] is None
    assert run["last_attempt"] == run["last_success"] == int(clock.now * 1000)
    assert run["requests"] > 0 and run["duration_ms"] == 0  # the fake clock did not move

    clock.now += 60
    fake_split.fail_next("401")
    sync(fake_split, plan_store, clock)
    failed = plan_store.status()["sync"]
    assert failed["outcome"] == "failed" and "server-side SDK key" in failed["error"]
    assert failed["last_attempt"] == int(clock.now * 1000)
    assert failed["last_success"] == run["last_success"]


def test_overlapping_runs_cannot_interleave(fake_split, plan_store: PlanStore):
    fake_split.put_flag(flag("f"))
    plan_store.begin_sync("slow-cron-run", 1_800_000_000_000, 60_000)
    busy = sync(fake_split, plan_store)
    assert busy.outcome == "busy" and "slow-cron-run" in busy.error
    assert stored(plan_store)["version"] == 0

    # Once its lease has expired, another run takes over and the stale one is fenced out.
    later = FakeClock(now=1_800_000_000.0 + 120)
    assert sync(fake_split, plan_store, later, owner="manual").outcome == "ok"
    from worker.store import LeaseLost

    try:
        plan_store.stage("slow-cron-run", {"stage": {}, "units": {}})
    except LeaseLost as error:
        assert "no longer holds" in str(error)
    else:
        raise AssertionError("a stale run wrote after losing its lease")


def test_a_half_staged_segment_nothing_names_any_more_is_dropped(fake_split, plan_store):
    fake_split.put_flag(flag("f"))
    sync(fake_split, plan_store)
    fake_split.page_size = 1
    fake_split.put_flag(flag("f", "big"))
    for i in range(6):
        fake_split.change_segment("big", added=[f"k{i}"])
    assert sync(fake_split, plan_store, limits=SyncLimits(subrequests=6)).outcome == "partial"
    fake_split.put_flag(flag("f"))  # the flag stops naming the segment mid-way
    report = sync(fake_split, plan_store)
    assert report.outcome == "ok" and report.pending == []
    assert_store_equals_server(plan_store, fake_split)
    assert plan_store.begin_sync("x", 0, 1)["stage"] is None  # nothing left behind
