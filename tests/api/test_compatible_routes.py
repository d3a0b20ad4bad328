"""split-evaluator's and the Cloudflare template's routes, OFREP, auth, CORS, admin and RPC."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from flagedge.local import LocalStore, open_store
from sync import PlanFile, run_sync
from tests.conftest import fixture_segments, load
from worker.api import App, Request, Response
from worker.cache import PlanCache
from worker.impressions import Outbox, Recorder
from worker.settings import Settings


class Captured:
    """A sender stand-in: the outbox hands batches to it."""

    def __init__(self) -> None:
        self.batches: list[Any] = []

    async def send(self, batch: Any) -> Any:
        self.batches.append(batch)
        from worker.impressions import Batch

        return Batch()


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("compat")
    doc = load("flags/splitChanges-v1.3.json")
    plan = directory / "plan.json"
    plan.write_text(json.dumps({**doc, "segments": fixture_segments()}))
    report = asyncio.run(run_sync(PlanFile(plan), LocalStore(open_store(directory))))
    assert report.outcome == "ok"
    return directory


def make_app(state: Path, **settings: Any) -> tuple[App, Captured]:
    captured = Captured()
    outbox = Outbox(Recorder("DEBUG"), captured)  # type: ignore[arg-type]
    app = App(
        PlanCache(LocalStore(open_store(state))), settings=Settings(**settings), outbox=outbox
    )
    return app, captured


def call(
    app: App,
    method: str,
    target: str,
    body: Any = None,
    headers: dict | None = None,
    raw: bytes | None = None,
) -> Response:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    jobs: list = []
    response = asyncio.run(_handle(app, Request.build(method, target, headers or {}, data), jobs))
    return response


async def _handle(app: App, request: Request, jobs: list) -> Response:
    response = await app.handle(request, jobs.append)
    await asyncio.gather(*jobs)
    return response


@pytest.fixture
def app(state):
    return make_app(state)[0]


# -- split-evaluator ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_get_treatment_answers_split_name_and_treatment(app, method):
    answer = call(app, method, "/client/get-treatment?key=user1&split-name=sample_feature")
    assert answer.status == 200
    assert answer.payload() == {"splitName": "sample_feature", "treatment": "on"}


def test_with_config_adds_the_config_text(app):
    answer = call(
        app, "GET", "/client/get-treatment-with-config?key=user1&split-name=sample_feature"
    )
    assert answer.payload() == {
        "splitName": "sample_feature",
        "treatment": "on",
        "config": '{"size":15,"test":20}',
    }


def test_get_treatments_dedupes_and_answers_control_for_unknown_flags(app):
    answer = call(
        app,
        "GET",
        "/client/get-treatments?key=user1&split-names=sample_feature,"
        "%20sample_feature,nonexistant-experiment",
    )
    assert answer.payload() == {
        "sample_feature": {"treatment": "on"},
        "nonexistant-experiment": {"treatment": "control"},
    }
    answer = call(app, "GET", "/client/get-treatments-with-config?key=x&split-names=killed_feature")
    assert answer.payload() == {
        "killed_feature": {"treatment": "defTreatment", "config": '{"size":15,"defTreatment":true}'}
    }


def test_attributes_come_from_the_query_on_get_and_the_body_on_post(app):
    attrs = json.dumps({"email": "bilal@split.io"})
    target = "/client/get-treatment?key=bilal@split.io&split-name=rbs_feature_flag"
    assert call(app, "GET", f"{target}&attributes={attrs}").payload()["treatment"] == "on"
    posted = call(app, "POST", target, {"attributes": {"email": "bilal@split.io"}})
    assert posted.payload()["treatment"] == "on"
    assert call(app, "POST", f"{target}&attributes={attrs}", {}).payload()["treatment"] == "off"


def test_by_sets(app):
    answer = call(app, "GET", "/client/get-treatments-by-sets?key=user1&flag-sets=set1,SET4,bad!")
    assert set(answer.payload()) == {"sample_feature", "whitelist_feature", "all_feature"}
    with_config = call(
        app, "GET", "/client/get-treatments-with-config-by-sets?key=u&flag-sets=nope"
    )
    assert with_config.payload() == {}


def test_get_all_treatments_by_traffic_type(app):
    keys = json.dumps(
        [
            {"matchingKey": "user1", "trafficType": "user"},
            {"matchingKey": 7, "trafficType": "account"},
        ]
    )
    answer = call(app, "GET", f"/client/get-all-treatments?keys={keys}")
    assert answer.status == 200
    assert answer.payload()["account"] == {}
    assert answer.payload()["user"] == {
        "rbs_feature_flag": {"treatment": "off"}
    }  # its only user flag


@pytest.mark.parametrize(
    ("target", "messages"),
    [
        (
            "/client/get-treatment?split-name=f",
            ["you passed a null or undefined key, key must be a non-empty string."],
        ),
        (
            "/client/get-treatment?key=&split-name=f",
            ["you passed an empty string, key must be a non-empty string."],
        ),
        (
            "/client/get-treatment?key=a&key=b&split-name=f",
            ["you passed an invalid key, key must be a non-empty string."],
        ),
        (
            "/client/get-treatment?key=" + "k" * 251 + "&split-name=f",
            ["key too long, key must be 250 characters or less."],
        ),
        (
            "/client/get-treatment?key=a&bucketing-key=&split-name=f",
            ["you passed an empty string, bucketing-key must be a non-empty string."],
        ),
        (
            "/client/get-treatment?key=a",
            ["you passed a null or undefined split-name, split-name must be a non-empty string."],
        ),
        (
            "/client/get-treatment?key=a&split-name=%20",
            ["you passed an empty split-name, split-name must be a non-empty string."],
        ),
        (
            "/client/get-treatments?key=a",
            ["you passed a null or undefined split-names, split-names must be a non-empty array."],
        ),
        ("/client/get-treatments?key=a&split-names=,,", ["split-names must be a non-empty array."]),
        (
            "/client/get-treatments-by-sets?key=a&flag-sets=",
            ["you passed an empty flag-sets, flag-sets must be a non-empty array."],
        ),
        (
            "/client/get-treatment?key=a&split-name=f&attributes=lalala",
            ["attributes must be a plain object."],
        ),
        (
            "/client/get-treatment?split-name=",
            [
                "you passed a null or undefined key, key must be a non-empty string.",
                "you passed an empty split-name, split-name must be a non-empty string.",
            ],
        ),
        (
            "/client/get-all-treatments?keys=%5B%5D",
            ["there should be at least one matchingKey-trafficType element."],
        ),
        ("/client/get-all-treatments?keys=nope", ["keys must be a valid format."]),
    ],
)
def test_validation_answers_400_with_split_evaluators_messages(app, target, messages):
    answer = call(app, "GET", target)
    assert answer.status == 400
    assert answer.payload() == {"error": messages}


def test_post_with_a_body_that_is_not_json(app):
    answer = call(app, "POST", "/client/get-treatment?key=a&split-name=f", raw=b"{nope")
    assert answer.status == 400
    assert answer.payload()["error"]["type"] == "entity.parse.failed"


def test_track_queues_an_event(state):
    app, captured = make_app(state)
    answer = call(app, "GET", "/client/track?key=u&traffic-type=User&event-type=checkout&value=3.5")
    assert (answer.status, answer.body) == (200, b"Successfully queued event")
    event = captured.batches[0].events[0]
    assert (event["trafficTypeName"], event["eventTypeId"], event["value"]) == (
        "user",
        "checkout",
        3.5,
    )
    bad = call(app, "GET", "/client/track?key=u&traffic-type=user&event-type=no%20spaces&value=x")
    assert bad.status == 400
    assert bad.payload()["error"][0].startswith('you passed "no spaces", event-type must adhere')
    assert bad.payload()["error"][1] == "value must be null or number."


def test_healthcheck(app, tmp_path):
    answer = call(app, "GET", "/admin/healthcheck")
    assert (answer.status, answer.body) == (200, b"Split Evaluator working as expected.")
    empty = App(PlanCache(LocalStore(open_store(tmp_path))))
    assert call(empty, "GET", "/admin/healthcheck").status == 500


def test_impressions_disabled_parameter_records_nothing(state):
    app, captured = make_app(state)
    call(app, "GET", "/client/get-treatment?key=u&split-name=all_feature&impressions-disabled=true")
    assert captured.batches == []
    call(app, "GET", "/client/get-treatment?key=u&split-name=all_feature")
    assert captured.batches[0].impressions[0]["f"] == "all_feature"


# -- the Cloudflare template's route -----------------------------------------------


@pytest.mark.parametrize(
    ("target", "status", "text"),
    [
        ("/get-treatment?key=user1&feature-flag=sample_feature", 200, "Treatment: on"),
        ("/get-treatment?key=user1&split=sample_feature", 200, "Treatment: on"),
        ("/get-treatment?key=user1&feature-flag=nope", 200, "Treatment: control"),
        ("/get-treatment?feature-flag=x", 400, "No key provided"),
        ("/get-treatment?key=a", 400, "No feature flag name provided"),
    ],
)
def test_template_route_answers_plain_text(app, target, status, text):
    answer = call(app, "GET", target)
    assert (answer.status, answer.body.decode()) == (status, text)
    assert answer.headers["content-type"].startswith("text/plain")


# -- OFREP --------------------------------------------------------------------------


def ofrep(app: App, path: str, context: Any, headers: dict | None = None) -> Response:
    return call(
        app, "POST", path, {"context": context} if context is not None else None, headers=headers
    )


def test_ofrep_single_flag(app):
    # The fixture's conditions have no label, so Split reports "default rule": reason DEFAULT.
    answer = ofrep(app, "/ofrep/v1/evaluate/flags/sample_feature", {"targetingKey": "user1"})
    assert answer.status == 200
    assert answer.payload() == {
        "key": "sample_feature",
        "value": "on",
        "variant": "on",
        "reason": "DEFAULT",
        "metadata": {
            "label": "default rule",
            "config": '{"size":15,"test":20}',
            "changeNumber": 123,
        },
    }


@pytest.mark.parametrize(
    ("flag", "context", "reason"),
    [
        ("killed_feature", {"targetingKey": "k"}, "DISABLED"),
        ("prereq_feature", {"targetingKey": "user1234"}, "DEFAULT"),
        (
            "rbs_feature_flag",
            {"targetingKey": "bilal@split.io", "email": "bilal@split.io"},
            "TARGETING_MATCH",
        ),
    ],
)
def test_ofrep_reasons(app, flag, context, reason):
    assert ofrep(app, f"/ofrep/v1/evaluate/flags/{flag}", context).payload()["reason"] == reason


@pytest.mark.parametrize(
    ("context", "raw", "status", "code"),
    [
        ({"targetingKey": "k"}, None, 404, "FLAG_NOT_FOUND"),
        ({}, None, 400, "TARGETING_KEY_MISSING"),
        ({"targetingKey": ""}, None, 400, "INVALID_CONTEXT"),
        (None, b"{nope", 400, "PARSE_ERROR"),
        (None, b"[]", 400, "PARSE_ERROR"),
    ],
)
def test_ofrep_single_errors(app, context, raw, status, code):
    path = "/ofrep/v1/evaluate/flags/" + ("nope" if status == 404 else "sample_feature")
    answer = call(app, "POST", path, {"context": context} if context is not None else None, raw=raw)
    assert answer.status == status
    payload = answer.payload()
    assert payload["errorCode"] == code and payload["key"] and payload["errorDetails"]


def test_ofrep_bulk_with_etag_and_304(app):
    first = ofrep(app, "/ofrep/v1/evaluate/flags", {"targetingKey": "user1"})
    assert first.status == 200
    flags = first.payload()["flags"]
    assert [f["key"] for f in flags] == sorted(f["key"] for f in flags) and len(flags) == 9
    etag = first.headers["etag"]
    again = ofrep(
        app, "/ofrep/v1/evaluate/flags", {"targetingKey": "user1"}, headers={"If-None-Match": etag}
    )
    assert (again.status, again.body, again.headers["etag"]) == (304, b"", etag)
    other = ofrep(
        app,
        "/ofrep/v1/evaluate/flags",
        {"targetingKey": "somebody-else"},
        headers={"If-None-Match": etag},
    )
    assert other.status == 200 and other.headers["etag"] != etag
    missing = ofrep(app, "/ofrep/v1/evaluate/flags", {})
    assert missing.status == 400 and missing.payload()["errorCode"] == "TARGETING_KEY_MISSING"


# -- tokens, CORS, admin ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        ({"Authorization": "s3cret"}, 200),  # split-evaluator's callers send the bare token
        ({"X-API-Key": "s3cret"}, 200),  # OFREP's API key scheme
    ],
)
def test_evaluation_token(state, headers, status):
    app, _ = make_app(state, eval_token="s3cret")
    answer = call(app, "GET", "/treatment?key=a&flag=all_feature", headers=headers)
    assert answer.status == status
    evaluator = call(app, "GET", "/client/get-treatment?key=a&split-name=f", headers=headers)
    assert evaluator.status == status
    if status == 401:
        assert evaluator.payload() == {"error": "Unauthorized"}
        assert "Bearer" in answer.payload()["error"]
    assert call(app, "GET", "/health", headers=headers).status == 200  # health stays open


def test_admin_sync_needs_a_configured_admin_token(state):
    async def sync():
        from sync.runner import SyncReport

        return SyncReport(outcome="ok", started_ms=1)

    app, _ = make_app(state)
    app.sync = sync
    assert call(app, "POST", "/admin/sync").status == 403
    assert call(app, "GET", "/admin/sync").status == 405  # never a GET that changes state
    app, _ = make_app(state, admin_token="adm1n")
    app.sync = sync
    assert call(app, "POST", "/admin/sync").status == 401
    assert call(app, "POST", "/admin/sync", headers={"Authorization": "Bearer nope"}).status == 401
    assert call(app, "POST", "/admin/sync", headers={"Authorization": "adm1n"}).status == 401
    done = call(app, "POST", "/admin/sync", headers={"Authorization": "Bearer adm1n"})
    assert done.status == 200 and done.payload()["outcome"] == "ok"


def test_cors_preflight_and_headers(state):
    app, _ = make_app(state, cors_origins=("https://app.example",))
    preflight = call(
        app,
        "OPTIONS",
        "/ofrep/v1/evaluate/flags",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Headers": "content-type, if-none-match",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type, if-none-match"
    answer = ofrep(
        app,
        "/ofrep/v1/evaluate/flags",
        {"targetingKey": "u"},
        headers={"Origin": "https://app.example"},
    )
    assert "ETag" in answer.headers["access-control-expose-headers"]
    stranger = call(app, "OPTIONS", "/treatment", headers={"Origin": "https://evil.example"})
    assert stranger.status == 403
    plain = call(app, "GET", "/treatment?key=a&flag=f", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


# -- flag sets in POST /treatments, RPC ------------------------------------------------


def test_treatments_by_flag_sets(app):
    answer = call(app, "POST", "/treatments", {"key": "user1", "flagSets": ["set1"]})
    assert set(answer.payload()) == {"sample_feature", "whitelist_feature"}
    both = call(
        app, "POST", "/treatments", {"key": "user1", "flags": ["all_feature"], "flagSets": ["set1"]}
    )
    assert set(both.payload()) == {"all_feature", "sample_feature", "whitelist_feature"}


def test_rpc_methods_answer_like_the_routes(state):
    app, captured = make_app(state)

    async def run() -> None:
        jobs: list = []
        one = await app.rpc("evaluate", jobs.append, key="user1", flag="sample_feature")
        assert one["treatment"] == "on"
        many = await app.rpc(
            "evaluate_many",
            jobs.append,
            key="user1",
            flags=["sample_feature", "nope"],
            attributes={"x": 1},
        )
        assert many["nope"]["label"] == "definition not found"
        sets = await app.rpc("evaluate_sets", jobs.append, key="user1", flag_sets=["set1"])
        assert set(sets) == {"sample_feature", "whitelist_feature"}
        assert (
            await app.rpc("track", jobs.append, key="u", traffic_type="user", event_type="e")
            is True
        )
        assert (await app.rpc("health", None))["status"] == "ok"
        with pytest.raises(ValueError, match="key must not be empty"):
            await app.rpc("evaluate", jobs.append, key="", flag="f")
        await asyncio.gather(*jobs)

    asyncio.run(run())
    # One per evaluated flag; none for the flag not in the plan.
    assert sum(len(b.impressions) for b in captured.batches) == 4


# -- regressions found by trying to break the new routes ------------------------------


def test_ofrep_trims_flag_keys_and_refuses_an_empty_one(app):
    answer = ofrep(app, "/ofrep/v1/evaluate/flags/%20sample_feature%20", {"targetingKey": "user1"})
    assert answer.status == 200 and answer.payload()["key"] == "sample_feature"
    empty = ofrep(app, "/ofrep/v1/evaluate/flags/%20", {"targetingKey": "user1"})
    assert empty.status == 400 and empty.payload()["errorCode"] == "GENERAL"


def test_impressions_disabled_still_counts_and_keeps_the_key(state):
    app, captured = make_app(state)
    keys = json.dumps([{"matchingKey": "u", "trafficType": "user"}])
    call(app, "GET", f"/client/get-all-treatments?keys={keys}&impressions-disabled=true")
    call(
        app,
        "POST",
        "/client/get-treatment?key=v&split-name=all_feature",
        {"impressionsDisabled": True},
    )
    recorded = captured.batches
    assert all(batch.impressions == [] for batch in recorded)
    recorder = app.outbox.recorder
    batch = recorder.take(10**13, everything=True)
    assert batch.unique_keys == {"rbs_feature_flag": {"u"}, "all_feature": {"v"}}


def test_a_sync_already_running_is_a_409_with_retry_after(state):
    async def busy():
        from sync.runner import SyncReport

        return SyncReport(outcome="busy", started_ms=1, error="another sync run holds the store")

    app, _ = make_app(state, admin_token="adm1n")
    app.sync = busy
    answer = call(app, "POST", "/admin/sync", headers={"Authorization": "bearer adm1n"})
    assert answer.status == 409 and answer.headers["retry-after"] == "5"
    assert "another sync" in answer.payload()["error"]


@pytest.mark.parametrize(
    "target",
    [
        "/treatment?key=zed&flag=sample_feature&attributes=" + json.dumps({"n": "0x" + "f" * 300}),
        "/treatment?key=zed&flag=sample_feature&attributes="
        + json.dumps({"v": "1" * 5000 + ".0.0"}),
    ],
)
def test_extreme_attribute_values_evaluate_instead_of_failing(app, target):
    answer = call(app, "GET", target)
    assert answer.status == 200 and answer.payload()["label"] != "exception"


def test_json_nesting_and_non_json_numbers_are_refused(app):
    deep = call(
        app,
        "POST",
        "/treatments",
        raw=b'{"key": "a", "flags": ["f"], "attributes": {"x": ' + b"[" * 40 + b"]" * 40 + b"}}",
    )
    assert deep.status == 400 and "nested deeper than 32" in deep.payload()["error"]
    nan = call(
        app, "POST", "/treatments", raw=b'{"key": "a", "flags": ["f"], "attributes": {"x": NaN}}'
    )
    assert nan.status == 400
    big = call(app, "POST", "/treatments", raw=b" " * (1 << 20) + b'{"key": "a", "flags": ["f"]}')
    assert big.status == 413
