"""The Worker in Pyodide under Node: cold start, warm requests, Durable Object calls.

    ./scripts/test -q tests/worker    # once, so tests/node/node_modules exists
    .venv/bin/python -m bench.worker

Each case runs in a fresh Node process with the test harness (the real
`workers` module, the Durable Object on sql.js). Cold start is the time from
the process's start to the first answer; the Durable Object already holds a
synced plan (saved from an earlier process), as it does in production when a
new isolate starts. flagedge is compared with a minimal Worker (one
``WorkerEntrypoint`` answering "ok") that vendors the same SDK.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from pathlib import Path

from flagedge.bundle import build_bundle
from tests.conftest import fixture_segments, load
from tests.support.fake_split import FakeSplit
from tests.support.worker_harness import WorkerHarness, write_bundle

MINIMAL = """from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("ok")
"""
WARM = 300


def minimal_bundle(directory: Path, flagedge_dir: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "main.py").write_text(MINIMAL)
    shutil.copytree(flagedge_dir / "python_modules", directory / "python_modules")
    return directory


def measure(harness: WorkerHarness, path: str) -> dict[str, float]:
    first = harness.fetch("GET", path)
    assert first.status == 200, first.body
    warm = [harness.fetch("GET", path) for _ in range(WARM)]
    cold = harness.timings
    return {
        "load Pyodide (ms)": cold["loadPyodideMs"],
        "workers SDK + import main.py (ms)": cold["sdkMs"] + cold["importMainMs"],
        "first request (ms)": first.ms,
        "process start to first answer (ms)": cold["sinceProcessStartMs"] + first.ms,
        "warm request, median (ms)": statistics.median(w.ms for w in warm),
        "warm request CPU, median (ms)": statistics.median(w.cpu_ms for w in warm),
        "first request DO calls": first.durable_object_calls,
        "warm request DO calls": max(w.durable_object_calls for w in warm),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="flagedge-bench-"))
    split = FakeSplit(page_size=100).start()
    split.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    env = {
        "SPLIT_SDK_KEY": split.sdk_key,
        "SPLIT_SDK_URL": split.url,
        "FLAGEDGE_IMPRESSIONS_MODE": "NONE",
    }
    try:
        (work / "flagedge").mkdir()
        bundle = write_bundle(build_bundle(), work / "flagedge")
        minimal = minimal_bundle(work / "minimal", bundle)

        seeding = WorkerHarness(bundle, env)  # one sync, then keep the Durable Object's data
        sync = seeding.scheduled()
        again = seeding.scheduled()  # the same isolate, nothing changed
        stores = seeding.call("exportStores")
        seeding.close()

        rows = {}
        runs = {"flagedge": [], "minimal Worker": []}
        for _ in range(3):
            edge = WorkerHarness(bundle, env, stores=stores)
            runs["flagedge"].append(measure(edge, "/treatment?key=user1&flag=sample_feature"))
            edge.close()
            bare = WorkerHarness(minimal, {})
            runs["minimal Worker"].append(measure(bare, "/"))
            bare.close()
        for name, measured in runs.items():
            rows[name] = {
                k: round(statistics.median(m[k] for m in measured), 2) for k in measured[0]
            }
        print(json.dumps(rows, indent=2))
        print(
            json.dumps(
                {
                    "first scheduled sync (new isolate, fixture plan)": {
                        "wall_ms": round(sync["ms"], 1),
                        "cpu_ms": round(sync["cpuMs"], 1),
                    },
                    "next scheduled sync (no changes)": {
                        "wall_ms": round(again["ms"], 1),
                        "cpu_ms": round(again["cpuMs"], 1),
                    },
                },
                indent=2,
            )
        )
    finally:
        split.stop()
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
