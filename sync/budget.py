"""A run's budget of subrequests and time, with the clock it is read from.

The clock and the sleeper are injected, so tests drive retries and budgets
without waiting: a fake sleeper just advances a fake clock.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sync.errors import OutOfBudget

__all__ = ["Budget", "Clock", "Sleeper"]

Clock = Callable[[], float]
Sleeper = Callable[[float], Awaitable[None]]


@dataclass
class Budget:
    """Counts subrequests and reads the time left.

    ``reserve`` subrequests are kept back for the store calls that end a run
    (publish or stage, then the status), so a run that spends its budget on
    Split can still save its progress.
    """

    subrequests: int
    seconds: float
    clock: Clock = time.time
    sleeper: Sleeper = asyncio.sleep
    random: Callable[[], float] = random.random
    reserve: int = 2
    used: int = 0
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def remaining_seconds(self) -> float:
        return self.seconds - self.elapsed

    def take(self) -> None:
        """Spend one subrequest of the run's own work, or raise ``OutOfBudget``."""
        if self.used + self.reserve >= self.subrequests:
            raise OutOfBudget(f"subrequest budget of {self.subrequests} spent")
        if self.remaining_seconds <= 0:
            raise OutOfBudget(f"time budget of {self.seconds:g}s spent")
        self.used += 1

    def take_reserved(self) -> None:
        """Spend a subrequest on a store call that ends the run; never refused."""
        self.used += 1

    async def sleep(self, seconds: float) -> None:
        await self.sleeper(seconds)
