"""The Worker, end to end, in Pyodide 0.28.2 under Node with the real `workers` module.

What runs is exactly the module set the Pulumi program uploads
(``flagedge.bundle.build_bundle``), vendored packages included. Split's API and
events API are fakes on loopback; every other host is refused by the harness.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagedge.bundle import build_bundle
from flagedge.local import LocalStore, open_store
from sync import SplitApi, run_sync
from tests.conftest import TABLE, fixture_segments, load
from tests.support.fake_events import FakeEvents
from tests.support.fake_split import FakeSplit
from tests.support.worker_harness import HarnessError, WorkerHarness, write_bundle
from worker.api import App, Request
from worker.cache import PlanCache

pytestmark = pytest.mark.pyodide


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return write_bundle(build_bundle(), tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def split() -> Iterator[FakeSplit]:
    fake = FakeSplit(page_size=4).start()
    fake.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def events() -> Iterator[FakeEvents]:
    fake = FakeEvents().start()
    yield fake
    fake.stop()


def worker_env(split: FakeSplit, events: FakeEvents, **extra: str) -> dict[str, str]:
    return {
        "SPLIT_SDK_KEY": split.sdk_key,
        "SPLIT_SDK_URL": split.url,
        "SPLIT_EVENTS_URL": events.url,
        "SPLIT_TELEMETRY_URL": events.url,
        "FLAGEDGE_IMPRESSIONS_MODE": "DEBUG",
        "FLAGEDGE_ADMIN_TOKEN": "adm1n",
        **extra,
    }


@pytest.fixture(scope="module")
def worker(bundle_dir, split, events) -> Iterator[WorkerHarness]:
    harness = WorkerHarness(bundle_dir, worker_env(split, events))
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def synced(worker) -> WorkerHarness:
    before = len(worker.logs)
    worker.scheduled()
    assert any("sync ok" in line for line in worker.logs[before:]), worker.logs[before:]
    return worker


@pytest.fixture(scope="module")
def cpython_app(split, tmp_path_factory) -> App:
    """The same plan, synced and served by CPython: the reference for equal answers."""
    store = LocalStore(open_store(tmp_path_factory.mktemp("cpython")))

    async def prepare() -> None:
        import httpx

        async with httpx.AsyncClient() as client:
            report = await run_sync(SplitApi(client, split.sdk_key, sdk_url=split.url), store)
        assert report.outcome == "ok"

    asyncio.run(prepare())
    return App(PlanCache(store))


def test_the_bundle_runs_on_pyodide_0_28_2(worker):
    assert worker.versions == {"python": "3.13.2", "pyodide": "0.28.2"}


def test_health_is_503_before_the_first_sync(bundle_dir, split, events):
    fresh = WorkerHarness(bundle_dir, worker_env(split, events))
    try:
        answer = fresh.fetch("GET", "/health")
        assert answer.status == 503 and answer.json()["status"] == "not ready"
        assert fresh.fetch("GET", "/treatment?key=a&flag=b").json()["label"] == "not ready"
    finally:
        fresh.close()


def test_a_scheduled_event_syncs_from_split_through_the_runtimes_fetch(synced, split):
    split_fetches = [f for f in synced.stats()["fetches"] if f["url"].startswith(split.url)]
    assert any("/splitChanges?s=1.3&since=-1&rbSince=-1" in f["url"] for f in split_fetches)
    assert any("/segmentChanges/employees" in f["url"] for f in split_fetches)
    sync_lines = [line for line in synced.logs if "flagedge.sync: sync" in line]
    assert sync_lines and sync_lines[0].startswith("flagedge.sync: sync ok: version 1 (published)")
    health = synced.fetch("GET", "/health").json()
    assert health["status"] == "ok" and health["counts"]["flags"] == 9


REQUESTS: list[tuple[str, str, Any]] = [
    *[
        (
            "GET",
            "/treatment?"
            + "&".join([f"key={k}", f"flag={f}", *([f"attributes={json.dumps(a)}"] if a else [])]),
            None,
        )
        for k, f, a, _ in TABLE
    ],
    ("GET", "/treatment?key=k&flag=nope", None),
    ("GET", "/treatment?key=user1&flag=sample_feature&bucketingKey=other", None),
    ("POST", "/treatments", {"key": "user1", "flags": ["sample_feature", "killed_feature", "x"]}),
    ("POST", "/treatments", {"key": "user1", "flagSets": ["set1"]}),
    ("GET", "/treatment?key=&flag=x", None),
    ("GET", "/treatment?key=a&flag=x&attributes=%5B1%5D", None),
    ("POST", "/treatments", {"key": "a", "flags": []}),
    ("DELETE", "/treatment", None),
    ("GET", "/nowhere", None),
    ("GET", "/client/get-treatment?key=user1&split-name=sample_feature", None),
    (
        "POST",
        "/client/get-treatments-with-config?key=user1&split-names=sample_feature,killed_feature",
        {"attributes": {"a": 1}},
    ),
    ("GET", "/client/get-treatment?key=&split-name=", None),
    ("GET", "/get-treatment?key=user1&feature-flag=sample_feature", None),
    ("GET", "/get-treatment?key=user1", None),
    ("POST", "/ofrep/v1/evaluate/flags/killed_feature", {"context": {"targetingKey": "k"}}),
    ("POST", "/ofrep/v1/evaluate/flags/nope", {"context": {"targetingKey": "k"}}),
    ("POST", "/ofrep/v1/evaluate/flags", {"context": {"targetingKey": "user1"}}),
    ("POST", "/track", {"key": "u", "trafficType": "user", "eventType": "bought", "value": 2}),
    ("POST", "/track", {"key": "u", "trafficType": "user", "eventType": "bad event"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), REQUESTS, ids=[f"{m} {p[:60]}" for m, p, _ in REQUESTS]
)
def test_http_answers_equal_the_cpython_ones(synced, cpython_app, method, path, body):
    data = json.dumps(body) if body is not None else None
    edge = synced.fetch(method, path, body=data, headers={"content-type": "application/json"})
    local = asyncio.run(
        cpython_app.handle(
            Request.build(
                method, path, {"content-type": "application/json"}, data.encode() if data else b""
            )
        )
    )
    assert edge.status == local.status
    assert edge.headers["content-type"] == local.headers["content-type"]
    assert edge.body == local.body.decode()
    if "etag" in local.headers:
        assert edge.headers["etag"] == local.headers["etag"]


def test_a_warm_request_makes_no_durable_object_call(synced):
    first = synced.fetch("GET", "/treatment?key=user1&flag=sample_feature")
    warm = [synced.fetch("GET", f"/treatment?key=u{i}&flag=all_feature") for i in range(20)]
    assert first.durable_object_calls <= 1
    assert all(answer.durable_object_calls == 0 for answer in warm)


def test_impressions_leave_after_the_response_and_arrive(synced, events, split):
    synced.drain()  # earlier tests' sends, if any, land first
    events.received.clear()
    events.gate.clear()  # the events API will not answer until the test says so
    answer = synced.fetch("GET", "/treatment?key=carol&flag=all_feature")
    assert answer.status == 200 and answer.json()["treatment"] == "on"
    assert answer.wait_until == 1  # the send was handed to waitUntil ...
    assert events.received == []  # ... and had not reached Split when the response left
    events.gate.set()
    settled = synced.drain()
    assert all(item["ok"] for item in settled)
    impressions = events.bodies("/testImpressions/bulk")
    assert [i["k"] for b in impressions for f in b for i in f["i"]] == ["carol"]
    sent = next(r for r in events.received if r.path.endswith("/testImpressions/bulk"))
    assert sent.headers["authorization"] == f"Bearer {split.sdk_key}"
    assert sent.headers["splitsdkimpressionsmode"] == "DEBUG"


def test_a_bulk_call_records_one_impression_per_flag(synced, events):
    synced.drain()
    events.received.clear()
    synced.fetch(
        "POST",
        "/treatments",
        body=json.dumps({"key": "dave", "flags": ["all_feature", "killed_feature", "missing"]}),
    )
    synced.drain()
    flags = sorted(f["f"] for b in events.bodies("/testImpressions/bulk") for f in b)
    assert flags == ["all_feature", "killed_feature"]  # none for a flag not in the plan


def test_events_are_sent_after_the_response(synced, events):
    synced.drain()
    events.received.clear()
    answer = synced.fetch(
        "POST",
        "/track",
        body=json.dumps(
            {
                "key": "erin",
                "trafficType": "User",
                "eventType": "checkout",
                "value": 9.5,
                "properties": {"plan": "pro"},
            }
        ),
    )
    assert answer.status == 202
    synced.drain()
    (event,) = events.bodies("/events/bulk")[0]
    assert (
        event["key"],
        event["trafficTypeName"],
        event["eventTypeId"],
        event["value"],
        event["properties"],
    ) == ("erin", "user", "checkout", 9.5, {"plan": "pro"})


def test_a_failing_events_api_never_fails_a_response(synced, events):
    synced.drain()
    events.status = 500
    try:
        answer = synced.fetch("GET", "/treatment?key=frank&flag=all_feature")
        assert answer.status == 200
        settled = synced.drain()
        assert all(item["ok"] for item in settled)
        assert any("answered HTTP 500; kept for the next flush" in line for line in synced.logs)
    finally:
        events.status = 200


def test_rpc_methods(synced):
    assert synced.rpc("evaluate", "user1", "sample_feature")["treatment"] == "on"
    many = synced.rpc("evaluate_many", "user1", ["sample_feature", "killed_feature"])
    assert many["killed_feature"]["label"] == "killed"
    by_sets = synced.rpc("evaluate_sets", "user1", ["set1"])
    assert set(by_sets) == {"sample_feature", "whitelist_feature"}
    assert synced.rpc("track", "u", "user", "clicked") is True
    assert synced.rpc("health")["status"] == "ok"
    with pytest.raises(HarnessError, match="key must not be empty"):
        synced.rpc("evaluate", "", "sample_feature")


def test_admin_sync_over_http(synced, split):
    assert synced.fetch("POST", "/admin/sync").status == 401
    assert synced.fetch("GET", "/admin/sync").status == 405
    split.put_flag(dict(split.definitions("ff")["all_feature"], killed=True))
    answer = synced.fetch("POST", "/admin/sync", headers={"Authorization": "Bearer adm1n"})
    assert answer.status == 200 and answer.json()["published"] is True
    killed = synced.fetch("GET", "/treatment?key=a&flag=all_feature").json()
    assert killed["label"] == "killed"  # the sync in this isolate expired its cache


def test_large_segments_stay_in_the_durable_object(bundle_dir, split, events):
    harness = WorkerHarness(bundle_dir, worker_env(split, events, FLAGEDGE_LARGE_SEGMENT_SIZE="1"))
    try:
        harness.scheduled()
        first = harness.fetch("GET", "/treatment?key=user1&flag=sample_feature")
        assert first.json()["treatment"] == "on"
        warm = harness.fetch("GET", "/treatment?key=user3&flag=sample_feature")
        assert warm.json()["treatment"] == "on"
        assert warm.durable_object_calls == 1  # one membership lookup, every segment at once
        assert harness.fetch("GET", "/treatment?key=x&flag=all_feature").durable_object_calls == 0
        assert harness.stats()["durableObjectCallsByMethod"]["memberships"] == 2
    finally:
        harness.close()


def test_the_plan_is_revalidated_once_the_interval_has_passed(bundle_dir, split, events):
    harness = WorkerHarness(bundle_dir, worker_env(split, events, FLAGEDGE_CACHE_SECONDS="0"))
    try:
        harness.scheduled()
        calls = [
            harness.fetch("GET", "/treatment?key=k&flag=all_feature").durable_object_calls
            for _ in range(3)
        ]
        assert calls == [1, 1, 1]  # an interval of 0: every request asks for the version
    finally:
        harness.close()


def test_only_loopback_can_be_fetched(synced):
    with pytest.raises(HarnessError, match="refused; only loopback is allowed"):
        synced.python("import js\nawait js.fetch('https://sdk.split.io/api/splitChanges')")


def test_the_durable_object_sql_seam_rolls_back_through_transaction_sync(synced):
    outcome = synced.python("""
import js
from worker.entry import DurableObjectSql
from worker.store import PlanStore, StoreError
storage = js.harnessStorage()
sql = DurableObjectSql(storage)
try:
    sql.execute("BEGIN")
    begin = "accepted"
except Exception as error:
    begin = "refused"
store = PlanStore(sql)
store.begin_sync("o", 0, 1000)
store.stage("o", {"stage": {"fingerprint": "f", "base_version": 0, "rebuild": True},
                  "flags": {"f": {"body": "{}", "refs": ["missing"]}},
                  "units": {"splits": {"since": 1, "rb_since": -1, "done": True}}})
try:
    store.publish("o", ["splits"])
    publish = "published"
except StoreError as error:
    publish = str(error)
[begin, publish, store.version(), len(sql.execute("SELECT * FROM flags"))]
""")
    assert outcome[0] == "refused"
    assert "segments not yet synced: missing" in outcome[1]
    assert outcome[2:] == [0, 0]  # the rebuild's deletes were rolled back with it


def test_deep_json_is_refused_and_the_isolate_survives(synced):
    deep = (
        '{"key": "a", "flags": ["all_feature"], "attributes": {"x": '
        + "[" * 5000
        + "]" * 5000
        + "}}"
    )
    answer = synced.fetch("POST", "/treatments", body=deep)
    assert answer.status == 400 and "nested deeper than 32" in answer.json()["error"]
    nested = (
        '{"key": "a", "flags": ["all_feature"], "attributes": {"n": '
        + "[" * 30
        + "7"
        + "]" * 30
        + "}}"
    )
    assert synced.fetch("POST", "/treatments", body=nested).status == 200
    assert synced.fetch("GET", "/health").status == 200  # Pyodide is still alive
