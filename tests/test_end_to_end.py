"""The first slice end to end: Split's API over HTTP -> sync -> SQLite store ->
isolate cache -> evaluator -> HTTP API, all real, on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from flagedge.devserver import DevServer
from flagedge.local import LocalStore, open_store
from sync import SplitApi, run_sync
from tests.conftest import TABLE, fixture_segments, load
from worker.api import App
from worker.cache import PlanCache


def test_sync_pages_split_changes_then_the_http_api_serves_the_table(fake_split, tmp_path: Path):
    fake_split.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    fake_split.page_size = 3  # 9 flags: the sync must follow since/till over several pages

    async def scenario() -> None:
        store = LocalStore(open_store(tmp_path))
        async with httpx.AsyncClient() as client:
            api = SplitApi(client, fake_split.sdk_key, sdk_url=fake_split.url)
            report = await run_sync(api, store)
        assert report.outcome == "ok", report.error
        assert report.counts == {"flags": 9, "rule_based_segments": 1, "segments": 2, "keys": 4}

        pages = [p for path, p in fake_split.requests if path == "/api/splitChanges"]
        assert pages[0]["since"] == "-1"
        assert len(pages) >= 4 and all(p["s"] == "1.3" and "rbSince" in p for p in pages)
        segment_paths = {path for path, _ in fake_split.requests if "segmentChanges" in path}
        assert segment_paths == {
            "/api/segmentChanges/employees",
            "/api/segmentChanges/human_beigns",
        }

        server = DevServer(App(PlanCache(store)), port=0)
        port = await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for key, flag, attributes, treatment in TABLE:
                    params = {"key": key, "flag": flag}
                    if attributes:
                        params["attributes"] = json.dumps(attributes)
                    answer = await http.get("/treatment", params=params)
                    assert answer.status_code == 200
                    assert answer.json()["treatment"] == treatment, (key, flag)

                missing = (await http.get("/treatment", params={"key": "k", "flag": "nope"})).json()
                assert missing == {
                    "treatment": "control",
                    "label": "definition not found",
                    "config": None,
                    "changeNumber": None,
                }

                bulk = await http.post(
                    "/treatments",
                    json={"key": "user1", "flags": ["sample_feature", "killed_feature"]},
                )
                assert bulk.status_code == 200
                body = bulk.json()
                assert body["sample_feature"]["treatment"] == "on"
                assert body["sample_feature"]["config"] == '{"size":15,"test":20}'
                flag_numbers = fake_split.definitions("ff")
                assert (
                    body["killed_feature"]["changeNumber"]
                    == flag_numbers["killed_feature"]["changeNumber"]
                )

                health = await http.get("/health")
                assert health.status_code == 200
                assert health.json()["status"] == "ok"
                assert health.json()["counts"]["flags"] == 9
        finally:
            await server.close()

    asyncio.run(scenario())


def test_health_is_503_not_ready_before_the_first_sync(tmp_path: Path):
    async def scenario() -> None:
        app = App(PlanCache(LocalStore(open_store(tmp_path))))
        from worker.api import Request

        answer = await app.handle(Request.build("GET", "/health"))
        assert answer.status == 503
        assert answer.payload()["status"] == "not ready"
        assert answer.payload()["counts"]["flags"] == 0

        treatment = await app.handle(Request.build("GET", "/treatment?key=a&flag=b"))
        assert treatment.payload()["label"] == "not ready"

    asyncio.run(scenario())
