"""The framework-free API: answers, and a 4xx with a message for every bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from flagedge.local import LocalStore, open_store
from sync import PlanFile, run_sync
from worker.api import App, Request, Response
from worker.cache import PlanCache

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plan.json"


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> App:
    store = LocalStore(open_store(tmp_path_factory.mktemp("state")))
    report = asyncio.run(run_sync(PlanFile(EXAMPLE), store))
    assert report.outcome == "ok"
    return App(PlanCache(store))


def call(
    app: App, method: str, target: str, body: object = None, raw: bytes | None = None
) -> Response:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    return asyncio.run(app.handle(Request.build(method, target, {}, data)))


def test_treatment_answers_the_four_fields(app):
    answer = call(app, "GET", "/treatment?key=alice&flag=new_checkout")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.payload()) == {"treatment", "label", "config", "changeNumber"}


def test_attributes_in_the_query_are_used(app):
    attrs = json.dumps({"plan": "pro"})
    answer = call(app, "GET", f"/treatment?key=zed&flag=dark_mode&attributes={attrs}")
    assert answer.payload()["treatment"] == "on"


def test_bucketing_key_changes_the_bucket_not_the_matching(app):
    seen = {
        call(app, "GET", f"/treatment?key=alice&flag=new_checkout&bucketingKey=b{i}").payload()[
            "treatment"
        ]
        for i in range(40)
    }
    assert seen == {"on", "off"}


def test_bulk_answers_one_entry_per_flag(app):
    answer = call(app, "POST", "/treatments", {"key": "bob", "flags": ["beta_banner", "nope"]})
    assert answer.status == 200
    assert answer.payload()["beta_banner"]["treatment"] == "on"
    assert answer.payload()["nope"]["label"] == "definition not found"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/treatment?flag=x", "key is required"),
        ("/treatment?key=&flag=x", "key must not be empty"),
        ("/treatment?key=%20%20&flag=x", "key must not be empty"),
        ("/treatment?key=" + "k" * 251 + "&flag=x", "at most 250"),
        ("/treatment?key=a", "flag is required"),
        ("/treatment?key=a&flag=", "flag: a flag name must not be empty"),
        ("/treatment?key=a&flag=x&attributes=%7Bnope", "attributes is not valid JSON"),
        ("/treatment?key=a&flag=x&attributes=%5B1%5D", "attributes must be a JSON object"),
        ("/treatment?key=a&flag=x&attributes=%22s%22", "attributes must be a JSON object"),
    ],
)
def test_bad_query_is_400_naming_the_problem(app, target, message):
    answer = call(app, "GET", target)
    assert answer.status == 400
    assert message in answer.payload()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "body is empty"),
        (b"{nope", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"flags": ["a"]}, "key is required"),
        ({"key": "", "flags": ["a"]}, "key must not be empty"),
        ({"key": "a"}, "flags must be a non-empty list"),
        ({"key": "a", "flags": []}, "flags must be a non-empty list"),
        ({"key": "a", "flags": "a"}, "flags must be a list"),
        ({"key": "a", "flags": ["x", ""]}, "flags[1]"),
        ({"key": "a", "flags": ["x", 3]}, "flags[1]"),
        ({"key": "a", "flags": ["x"], "attributes": [1]}, "attributes must be a JSON object"),
        ({"key": {"matchingKey": "a"}, "flags": ["x"]}, "needs both matchingKey and bucketingKey"),
    ],
)
def test_bad_bulk_body_is_400_naming_the_problem(app, body, message):
    raw = body if isinstance(body, bytes) else None
    answer = call(app, "POST", "/treatments", None if raw else body, raw=raw)
    assert answer.status == 400
    assert message in answer.payload()["error"]


def test_unknown_route_is_404_and_wrong_method_405(app):
    assert call(app, "GET", "/nowhere").status == 404
    wrong = call(app, "POST", "/health")
    assert wrong.status == 405
    assert wrong.headers["allow"] == "GET"
    assert "error" in wrong.payload()


# -- regressions found by trying to break the dev server -----------------------------


@pytest.mark.parametrize(
    ("method", "target", "body", "message"),
    [
        ("POST", "/treatments", '{"key": "\\ud800", "flags": ["new_checkout"]}', "lone surrogate"),
        ("GET", "/treatment?key=" + "%F0%9F%98%80" * 200 + "&flag=x", None, "400 characters"),
        (
            "GET",
            "/treatment?key=a&flag=x&attributes=" + "%5B" * 3000 + "%5D" * 3000,
            None,
            "not valid JSON",
        ),
        (
            "POST",
            "/treatments",
            '{"key": "a", "flags": ' + "[" * 3000 + "]" * 3000 + "}",
            "not valid JSON",
        ),
        ("GET", "/treatment?key=a&key=b&flag=x", None, "key is given 2 times"),
        (
            "POST",
            "/treatments",
            '{"key": "a", "flags": [' + ",".join(['"f"'] * 1001) + "]}",
            "at most 1000",
        ),
    ],
)
def test_hostile_input_is_a_400_not_a_crash(app, method, target, body, message):
    answer = call(app, method, target, raw=body.encode() if body else None)
    assert answer.status == 400
    assert message in answer.payload()["error"]


def test_head_is_get_without_a_body_and_absolute_targets_work(app):
    assert call(app, "HEAD", "/health").status == 200
    answer = call(app, "GET", "http://flags.example/treatment?key=bob&flag=beta_banner")
    assert answer.payload()["treatment"] == "on"
