"""Running the synchronizer against the fake Split API, and checking the store."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from flagedge.local import LocalStore
from sync import SplitApi, SyncLimits, SyncReport, run_sync
from sync.splitapi import RetryPolicy
from tests.support.fake_split import FakeSplit
from worker.splitdata import segment_refs
from worker.store import PlanStore


@dataclass
class FakeClock:
    """Wall time that moves only when the synchronizer sleeps (or a test says so)."""

    now: float = 1_800_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def sync(
    fake: FakeSplit,
    store: PlanStore,
    clock: FakeClock | None = None,
    *,
    sdk_key: str | None = None,
    flag_sets: tuple[str, ...] = (),
    limits: SyncLimits | None = None,
    retry: RetryPolicy | None = None,
    owner: str | None = None,
) -> SyncReport:
    clock = clock or FakeClock()

    async def run() -> SyncReport:
        async with httpx.AsyncClient() as client:
            api = SplitApi(
                client,
                sdk_key or fake.sdk_key,
                sdk_url=fake.url,
                flag_sets=flag_sets,
                retry=retry or RetryPolicy(request_timeout_s=0.5),
            )
            return await run_sync(
                api,
                LocalStore(store),
                limits=limits or SyncLimits(subrequests=1000),
                flag_sets=flag_sets,
                clock=clock,
                sleeper=clock.sleep,
                rng=lambda: 0.5,
                owner=owner,
            )

    return asyncio.run(run())


def stored(store: PlanStore) -> dict[str, Any]:
    snapshot = store.read_plan(-1, -1) or {}
    return {
        "flags": {json.loads(b)["name"]: json.loads(b) for b in snapshot.get("flags", [])},
        "rbs": {json.loads(b)["name"]: json.loads(b) for b in snapshot.get("rbs", [])},
        "segments": {n: set(keys) for n, keys in (snapshot.get("segments") or {}).items()},
        "ff_till": snapshot.get("ff_till"),
        "version": snapshot.get("version", 0),
    }


def expected(fake: FakeSplit, flag_sets: tuple[str, ...] = ()) -> dict[str, Any]:
    flags = {
        name: body
        for name, body in fake.definitions("ff", active_only=True).items()
        if not flag_sets or set(body.get("sets") or ()) & set(flag_sets)
    }
    rbs = fake.definitions("rbs", active_only=True)
    names = set()
    for body in [*flags.values(), *rbs.values()]:
        names.update(segment_refs(body))
    return {
        "flags": flags,
        "rbs": rbs,
        "segments": {name: fake.members(name) for name in names},
    }


def assert_store_equals_server(
    store: PlanStore, fake: FakeSplit, flag_sets: tuple[str, ...] = ()
) -> None:
    have, want = stored(store), expected(fake, flag_sets)
    assert have["flags"] == want["flags"]
    assert have["rbs"] == want["rbs"]
    assert have["segments"] == want["segments"]
