"""Every fault the synchronizer must survive, injected by the fake Split API.

Retries are retried within the run's budget; everything else fails the run
with a clear message, writes nothing and leaves the previous plan serving.
Delays come from a fake clock and sleeper: nothing here waits for real.
"""

from __future__ import annotations

import pytest

from sync import SyncLimits
from sync.splitapi import RetryPolicy
from tests.conftest import fixture_segments, load
from tests.sync.helpers import FakeClock, assert_store_equals_server, stored, sync


@pytest.fixture
def served(fake_split, plan_store):
    """A store already holding a good plan, and a server with one more change."""
    fake_split.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    assert sync(fake_split, plan_store).outcome == "ok"
    good = stored(plan_store)
    body = dict(fake_split.definitions("ff")["all_feature"], defaultTreatment="changed")
    fake_split.put_flag(body)
    fake_split.requests.clear()
    return good


@pytest.mark.parametrize("fault", ["drop", "500", "503", "truncate", "hang"])
def test_transient_faults_are_retried_and_the_run_succeeds(fake_split, plan_store, served, fault):
    fake_split.fail_next(fault, path="splitChanges")
    clock = FakeClock()
    report = sync(fake_split, plan_store, clock, retry=RetryPolicy(request_timeout_s=0.3))
    assert report.outcome == "ok", report.error
    assert_store_equals_server(plan_store, fake_split)
    assert len(clock.sleeps) == 1


def test_429_waits_as_long_as_retry_after_says(fake_split, plan_store, served):
    fake_split.fail_next("429", path="segmentChanges", retry_after="7")
    clock = FakeClock()
    report = sync(fake_split, plan_store, clock)
    assert report.outcome == "ok"
    assert clock.sleeps == [7.0]


def test_backoff_is_exponential_capped_and_jittered(fake_split, plan_store, served):
    fake_split.fail_next("500", path="splitChanges", times=5)
    clock = FakeClock()
    retry = RetryPolicy(attempts=6, base_s=0.5, cap_s=3.0)
    assert sync(fake_split, plan_store, clock, retry=retry).outcome == "ok"
    # rng is fixed at 0.5: delay = ceiling * (0.5 + 0.5 * 0.5) for ceilings 0.5, 1, 2, 3, 3.
    assert clock.sleeps == [0.375, 0.75, 1.5, 2.25, 2.25]


def test_retries_that_would_outlast_the_time_budget_fail_the_run(fake_split, plan_store, served):
    fake_split.fail_next("429", path="splitChanges", retry_after="120")
    report = sync(fake_split, plan_store, limits=SyncLimits(subrequests=1000, seconds=25))
    assert report.outcome == "failed"
    assert "outlast the run's time budget" in report.error
    assert stored(plan_store) == served


def test_exhausted_retries_fail_the_run_and_keep_the_previous_plan(fake_split, plan_store, served):
    fake_split.fail_next("500", times=10)
    report = sync(fake_split, plan_store)
    assert report.outcome == "failed" and "failed 4 times; last: HTTP 500" in report.error
    assert stored(plan_store) == served
    assert plan_store.status()["sync"]["outcome"] == "failed"


@pytest.mark.parametrize("status", ["401", "403"])
def test_a_refused_key_stops_at_once_naming_the_likely_cause(
    fake_split, plan_store, served, status
):
    fake_split.fail_next(status)
    clock = FakeClock()
    report = sync(fake_split, plan_store, clock)
    assert report.outcome == "failed"
    assert f"HTTP {status}" in report.error and "server-side SDK key" in report.error
    assert "client-side" in report.error
    assert clock.sleeps == [] and len(fake_split.requests) == 1
    assert stored(plan_store) == served


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("badjson", "not JSON"),
        ("wrongtype", "must be a list"),
        ("badflag", "flag 'broken' rejected"),
    ],
)
def test_a_malformed_answer_is_rejected_without_touching_the_store(
    fake_split, plan_store, served, fault, message
):
    fake_split.fail_next(fault, path="splitChanges")
    report = sync(fake_split, plan_store)
    assert report.outcome == "failed" and message in report.error
    assert stored(plan_store) == served
    assert sync(fake_split, plan_store).outcome == "ok"  # and the next run recovers


def test_a_wrongly_typed_segment_answer_is_rejected(fake_split, plan_store, served):
    fake_split.fail_next("wrongtype", path="segmentChanges")
    report = sync(fake_split, plan_store)
    assert report.outcome == "failed" and "segmentChanges" in report.error
    assert stored(plan_store) == served


def test_414_is_reported_as_too_many_flag_sets(fake_split, plan_store, served):
    fake_split.fail_next("414")
    report = sync(fake_split, plan_store, flag_sets=("a", "b"))
    assert report.outcome == "failed" and "too many flag sets" in report.error


def test_400_to_spec_1_3_from_split_itself_is_an_error_not_a_fallback(plan_store):
    import asyncio

    import httpx

    from flagedge.local import LocalStore
    from sync import SplitApi, run_sync

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "bad request"})

    async def run():
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            return await run_sync(SplitApi(client, "key"), LocalStore(plan_store))

    report = asyncio.run(run())
    assert report.outcome == "failed" and "HTTP 400" in report.error


def test_half_the_requests_failing_ends_equal_to_the_server_or_with_the_old_plan(
    fake_split, plan_store, served
):
    fake_split.fail_rate, fake_split.seed = 0.5, 3
    fake_split.fail_kinds = ("drop", "500", "503", "429", "truncate")
    outcomes = []
    for _ in range(8):
        before = stored(plan_store)
        report = sync(fake_split, plan_store)
        outcomes.append(report.outcome)
        if report.outcome == "ok":
            assert_store_equals_server(plan_store, fake_split)
        else:
            assert report.outcome == "failed" and report.error
            assert stored(plan_store) == before  # the previous plan, untouched
            assert plan_store.status()["sync"]["error"] == report.error
    assert "ok" in outcomes
