"""The isolate's plan cache: the parsed plan, revalidated at most once per interval.

A warm request inside the interval touches nothing outside the isolate. When
the interval has passed, one request asks the store "is version V still
current?" (``read_plan(V)``), which answers None or the new plan; concurrent
requests wait for that one answer instead of asking again. If the store cannot
be reached, the cached plan keeps serving and the next request tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from worker.evaluator import Evaluator, Fallbacks
from worker.plan import Plan

__all__ = ["PlanCache", "PlanReader"]

logger = logging.getLogger("flagedge.worker")


class PlanReader(Protocol):
    """The store's reader side, awaited (a Durable Object stub or a local store)."""

    async def read_plan(
        self, known_version: int, max_segment_size: int
    ) -> dict[str, Any] | None: ...

    async def memberships(self, key: str, segments: list[str]) -> list[str]: ...

    async def status(self) -> dict[str, Any]: ...


class PlanCache:
    """Holds the plan and its evaluator between requests of one isolate."""

    def __init__(
        self,
        reader: PlanReader,
        *,
        interval_s: float = 5.0,
        max_segment_size: int = 5000,
        fallbacks: Fallbacks | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.interval_s = interval_s
        self.max_segment_size = max_segment_size
        self.fallbacks = fallbacks
        self.clock = clock
        self.version = -1
        self.evaluator = Evaluator(None, fallbacks)
        self._fresh_until = float("-inf")
        self._pending: asyncio.Future[Evaluator] | None = None

    async def get(self) -> Evaluator:
        """The evaluator over the current plan (its plan is None before any sync)."""
        if self.clock() < self._fresh_until:
            return self.evaluator
        if self._pending is not None:
            return await asyncio.shield(self._pending)
        self._pending = asyncio.get_running_loop().create_future()
        try:
            evaluator = await self._revalidate()
        except BaseException as error:
            self._pending.set_exception(error)
            self._pending.exception()  # mark it retrieved; waiters re-raise it
            raise
        else:
            self._pending.set_result(evaluator)
            return evaluator
        finally:
            self._pending = None

    async def _revalidate(self) -> Evaluator:
        try:
            snapshot = await self.reader.read_plan(self.version, self.max_segment_size)
        except Exception as error:  # keep serving what we have; ask again next request
            if self.evaluator.plan is None:
                raise
            logger.warning("plan revalidation failed, serving version %s: %s", self.version, error)
            return self.evaluator
        if snapshot is not None:
            version = int(snapshot["version"])
            plan = Plan.from_snapshot(snapshot) if version > 0 else None
            self.evaluator = Evaluator(plan, self.fallbacks)
            self.version = version
        self._fresh_until = self.clock() + self.interval_s
        return self.evaluator

    def expire(self) -> None:
        """Make the next request revalidate (after a sync in this same process)."""
        self._fresh_until = float("-inf")

    async def memberships(self, key: str, segments: frozenset[str]) -> frozenset[str]:
        """Which large ``segments`` hold ``key``: one store call, none when no segment is large."""
        if not segments:
            return frozenset()
        return frozenset(await self.reader.memberships(key, sorted(segments)))
