"""The store in this process, awaited exactly like the Durable Object stub.

``flagedge dev``, ``flagedge sync`` and ``flagedge eval`` share one SQLite file
under ``--state`` (default ``.flagedge/``), so a sync in one terminal is seen
by the dev server in another.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from worker.sql import SqliteSql
from worker.store import PlanStore

__all__ = ["LocalStore", "open_store"]

STORE_FILE = "store.sqlite3"


def open_store(state_dir: str | Path) -> PlanStore:
    return PlanStore(SqliteSql(Path(state_dir) / STORE_FILE))


class LocalStore:
    """Async facade over a ``PlanStore``: the reader and the synchronizer's writer side.

    Each call runs in a worker thread, so a large sync's SQLite work does not
    stall the dev server's requests.
    """

    def __init__(self, store: PlanStore) -> None:
        self.store = store

    async def read_plan(self, known_version: int, max_segment_size: int) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.store.read_plan, known_version, max_segment_size)

    async def memberships(self, key: str, segments: list[str]) -> list[str]:
        return await asyncio.to_thread(self.store.memberships, key, segments)

    async def status(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.store.status)

    async def begin_sync(self, owner: str, now_ms: int, lease_ms: int) -> dict[str, Any]:
        return await asyncio.to_thread(self.store.begin_sync, owner, now_ms, lease_ms)

    async def stage(self, owner: str, piece: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.stage, owner, piece)

    async def discard_stage(self, owner: str) -> None:
        await asyncio.to_thread(self.store.discard_stage, owner)

    async def publish(
        self, owner: str, units: list[str], *, piece: dict[str, Any] | None, now_ms: int
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.store.publish, owner, units, piece=piece, now_ms=now_ms)

    async def end_sync(
        self, owner: str, status: dict[str, Any], sync_state: dict[str, Any]
    ) -> None:
        await asyncio.to_thread(self.store.end_sync, owner, status, sync_state)
