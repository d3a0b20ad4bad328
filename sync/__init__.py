"""The synchronizer: Split's rollout plan into the plan store.

``run_sync(source, store)`` runs once; ``make_source`` picks the source from
settings: a plan file when one is given, else Split's API with the SDK key.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from sync.planfile import PlanFile
from sync.runner import PlanSource, SyncLimits, SyncReport, SyncStore, run_sync
from sync.splitapi import SplitApi
from worker.settings import Settings

__all__ = [
    "PlanFile",
    "PlanSource",
    "SplitApi",
    "SyncLimits",
    "SyncReport",
    "SyncStore",
    "limits_from",
    "make_source",
    "run_sync",
]


def make_source(
    settings: Settings, client: httpx.AsyncClient, plan_file: str | Path | None = None
) -> PlanSource:
    """A plan file when given, else Split's API (which needs ``SPLIT_SDK_KEY``)."""
    if plan_file is not None:
        return PlanFile(plan_file)
    return SplitApi(
        client,
        settings.sdk_key,
        sdk_url=settings.sdk_url,
        flag_sets=settings.flag_sets,
        spec=settings.spec,
    )


def limits_from(settings: Settings) -> SyncLimits:
    return SyncLimits(subrequests=settings.sync_subrequests, seconds=settings.sync_seconds)
