"""The synchronizer on a large environment: 2,000 flags, 200 segments of 10,000 keys.

    .venv/bin/python -m bench.sync

The fake Split API runs in a child process on loopback (so only the
synchronizer's own CPU and memory are measured here), answering as Split does
for a full download: every flag in one splitChanges page and each segment in
one segmentChanges page. Measured, each into a fresh SQLite store:

* the first full sync and a sync with no changes, with an unlimited budget:
  requests, wall time, CPU time, peak memory;
* the same under the free plan's 50-subrequest budget: how many cron runs the
  first sync and a full refresh cycle take, and the CPU of the longest run.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from flagedge.local import LocalStore, open_store
from sync import SplitApi, SyncLimits, SyncReport, run_sync

FLAGS, SEGMENTS, KEYS = 2000, 200, 10_000

SERVER = r"""
import json, random, sys, threading
from tests.support.fake_split import FakeSplit

flags, segments, keys = (int(a) for a in sys.argv[1:4])
fake = FakeSplit(page_size=flags + 1)
rng = random.Random(7)
for s in range(segments):
    fake.change_segment(f"segment_{s:03d}", added=[f"user-{s}-{k:05d}" for k in range(keys)])
for f in range(flags):
    named = rng.sample(range(segments), rng.choice([0, 1, 1, 2]))
    conditions = [{"conditionType": "ROLLOUT", "label": f"in segment_{s:03d}",
                   "matcherGroup": {"combiner": "AND", "matchers": [{
                       "keySelector": {"trafficType": "user", "attribute": None},
                       "matcherType": "IN_SEGMENT", "negate": False,
                       "userDefinedSegmentMatcherData": {"segmentName": f"segment_{s:03d}"}}]},
                   "partitions": [{"treatment": "on", "size": 100}]} for s in named]
    conditions.append({"conditionType": "ROLLOUT", "label": "default rule",
                       "matcherGroup": {"combiner": "AND", "matchers": [{
                           "keySelector": None, "matcherType": "ALL_KEYS", "negate": False}]},
                       "partitions": [{"treatment": "on", "size": 50},
                                      {"treatment": "off", "size": 50}]})
    fake.put_flag({"name": f"flag_{f:04d}", "trafficTypeName": "user", "status": "ACTIVE",
                   "killed": False, "defaultTreatment": "off", "seed": rng.randint(1, 2**31),
                   "algo": 2, "trafficAllocation": 100, "conditions": conditions,
                   "configurations": {"on": json.dumps({"color": "green", "flag": f})}})
fake.page_size = 1_000_000  # each segment in one page, as Split answers since=-1
fake.start()
print(fake.url, fake.sdk_key, flush=True)
threading.Event().wait()
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def one_run(
    url: str, key: str, state: Path, limits: SyncLimits
) -> tuple[SyncReport, float, float]:
    store = LocalStore(open_store(state))
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=6)) as client:
        api = SplitApi(client, key, sdk_url=url)
        cpu, wall = time.process_time(), time.perf_counter()
        report = await run_sync(api, store, limits=limits)
        return report, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(FLAGS), str(SEGMENTS), str(KEYS)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url, key = server.stdout.readline().split()
        unlimited = SyncLimits(subrequests=1_000_000, seconds=3600)
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as state:
            baseline = peak_rss_mb()
            for label in ("first full sync", "no-change sync"):
                report, cpu, wall = asyncio.run(one_run(url, key, Path(state), unlimited))
                assert report.outcome == "ok", report.error
                rows.append(
                    {
                        "run": label,
                        "requests": report.requests,
                        "wall_s": round(wall, 2),
                        "cpu_s": round(cpu, 2),
                        "peak_rss_mb": round(peak_rss_mb(), 1),
                        "counts": report.counts,
                    }
                )
        print(f"baseline RSS {baseline:.1f} MB before the first run")
        for row in rows:
            print(json.dumps(row))

        free = SyncLimits(subrequests=50, seconds=25)
        with tempfile.TemporaryDirectory() as state:
            runs, longest, total_cpu = 0, 0.0, 0.0
            while True:  # the first sync, one cron run after another
                report, cpu, _ = asyncio.run(one_run(url, key, Path(state), free))
                runs += 1
                longest, total_cpu = max(longest, cpu), total_cpu + cpu
                assert report.outcome != "failed", report.error
                if report.version and not report.pending:
                    break
            print(
                json.dumps(
                    {
                        "run": "first sync, 50-subrequest runs",
                        "runs": runs,
                        "longest_run_cpu_ms": round(longest * 1000),
                        "total_cpu_s": round(total_cpu, 2),
                    }
                )
            )
            report, cpu, _ = asyncio.run(one_run(url, key, Path(state), free))
            per_run = report.requests - 3  # begin, splitChanges, status
            print(
                json.dumps(
                    {
                        "run": "refresh, 50-subrequest runs",
                        "segments_per_run": per_run,
                        "runs_per_full_cycle": -(-SEGMENTS // per_run),
                        "run_cpu_ms": round(cpu * 1000),
                        "outcome": report.outcome,
                    }
                )
            )
    finally:
        server.kill()


if __name__ == "__main__":
    main()
