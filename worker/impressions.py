"""Impressions and events, as Split's SDKs record and send them.

``Recorder`` is the isolate's bounded observer and counter, the only state
besides the plan cache that outlives a request:

* OPTIMIZED: an impression is sent the first time its (key, flag, treatment,
  label, change number) is seen in the current hour; repeats are only counted
  (``/testImpressions/count``), and a sent impression carries its previous
  time ``pt``.
* DEBUG: every impression is sent, with ``pt``.
* NONE, and any flag with ``impressionsDisabled``: nothing is sent but counts
  and the unique keys per flag (telemetry ``/v1/keys/ss``).

Evaluations Split records no impression for (a flag not in the plan, input
refused before evaluating) are skipped. Every buffer is bounded: past a bound
the oldest entries go, and the number dropped is logged at the next flush.

``Sender`` posts a batch to Split's events and telemetry APIs. The Worker runs
it through ``ctx.waitUntil`` after the response; a failure is logged and the
batch is put back (within the bounds) for the next flush, never raised.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from worker.results import Result

__all__ = ["Batch", "Outbox", "Recorder", "Sender"]

logger = logging.getLogger("flagedge.impressions")

HOUR_MS = 3_600_000
SDK_VERSION = "python-flagedge-0.1.0"


def _hour(ms: int) -> int:
    return ms - ms % HOUR_MS


@dataclass
class Batch:
    impressions: list[dict[str, Any]] = field(default_factory=list)  # each with "f"
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    unique_keys: dict[str, set[str]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.impressions or self.counts or self.unique_keys or self.events)


class Recorder:
    """What the isolate remembers about evaluations until it sends them."""

    def __init__(
        self,
        mode: str = "OPTIMIZED",
        *,
        observer_size: int = 10_000,
        max_impressions: int = 10_000,
        max_events: int = 10_000,
        max_counts: int = 10_000,
        max_unique_keys: int = 50_000,
        counts_every_ms: int = 30_000,
    ) -> None:
        self.mode = mode
        self._seen: OrderedDict[tuple[str, str, str, str | None, int | None], int] = OrderedDict()
        self._observer_size = observer_size
        self._max_impressions = max_impressions
        self._max_events = max_events
        self._max_counts = max_counts
        self._max_unique_keys = max_unique_keys
        self._counts_every_ms = counts_every_ms
        self._pending = Batch()
        self._unique_total = 0
        self._counts_since: int | None = None
        self.dropped = 0

    def record(
        self, key: str, bucketing_key: str | None, results: Mapping[str, Result], now_ms: int
    ) -> None:
        """Note one call's results (one impression per flag, as getTreatments does)."""
        for flag, result in results.items():
            if not result.impression:
                continue
            if self.mode == "NONE" or result.impressions_disabled:
                self._count(flag, now_ms)
                self._unique(flag, key)
                continue
            previous = self._observe(key, flag, result, now_ms)
            if self.mode == "OPTIMIZED" and previous is not None:
                self._count(flag, now_ms)
                if previous >= _hour(now_ms):
                    continue
            impression: dict[str, Any] = {
                "f": flag,
                "k": key,
                "t": result.treatment,
                "m": now_ms,
                "c": result.change_number,
                "r": result.label,
            }
            if bucketing_key is not None and bucketing_key != key:
                impression["b"] = bucketing_key
            if previous is not None:
                impression["pt"] = previous
            self._append(self._pending.impressions, impression, self._max_impressions)

    def track(self, event: dict[str, Any]) -> None:
        self._append(self._pending.events, event, self._max_events)

    def _append(self, queue: list[dict[str, Any]], item: dict[str, Any], bound: int) -> None:
        if len(queue) >= bound:
            del queue[0]
            self.dropped += 1
        queue.append(item)

    def _observe(self, key: str, flag: str, result: Result, now_ms: int) -> int | None:
        identity = (key, flag, result.treatment, result.label, result.change_number)
        previous = self._seen.pop(identity, None)
        self._seen[identity] = now_ms
        if len(self._seen) > self._observer_size:
            self._seen.popitem(last=False)
        return previous

    def _count(self, flag: str, now_ms: int) -> None:
        counts = self._pending.counts
        slot = (flag, _hour(now_ms))
        if slot not in counts and len(counts) >= self._max_counts:
            self.dropped += 1
            return
        counts[slot] = counts.get(slot, 0) + 1
        if self._counts_since is None:
            self._counts_since = now_ms

    def _unique(self, flag: str, key: str) -> None:
        keys = self._pending.unique_keys.setdefault(flag, set())
        if key not in keys:
            if self._unique_total >= self._max_unique_keys:
                self.dropped += 1
                return
            keys.add(key)
            self._unique_total += 1

    def take(self, now_ms: int, *, everything: bool = False) -> Batch:
        """What is due: impressions and events now; counts and unique keys every 30 s."""
        pending = self._pending
        due_counts = (
            everything
            or (
                self._counts_since is not None
                and now_ms - self._counts_since >= self._counts_every_ms
            )
            or len(pending.counts) >= self._max_counts
            or self._unique_total >= self._max_unique_keys
        )
        batch = Batch(impressions=pending.impressions, events=pending.events)
        pending.impressions, pending.events = [], []
        if due_counts:
            batch.counts, batch.unique_keys = pending.counts, pending.unique_keys
            pending.counts, pending.unique_keys = {}, {}
            self._unique_total = 0
            self._counts_since = None
        if self.dropped:
            logger.warning("dropped %d impressions, events or counts: buffers full", self.dropped)
            self.dropped = 0
        return batch

    def put_back(self, batch: Batch, now_ms: int) -> None:
        """Requeue a batch the API refused, within the bounds (newest kept)."""
        pending = self._pending
        pending.impressions[:0] = batch.impressions
        pending.events[:0] = batch.events
        for queue, bound in (
            (pending.impressions, self._max_impressions),
            (pending.events, self._max_events),
        ):
            if len(queue) > bound:
                self.dropped += len(queue) - bound
                del queue[: len(queue) - bound]
        for slot, count in batch.counts.items():
            pending.counts[slot] = pending.counts.get(slot, 0) + count
        for flag, keys in batch.unique_keys.items():
            pending.unique_keys.setdefault(flag, set()).update(keys)
        self._unique_total = sum(len(k) for k in pending.unique_keys.values())
        if batch.counts and self._counts_since is None:
            self._counts_since = now_ms


class Sender:
    """Posts batches to Split's events and telemetry APIs."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        sdk_key: str,
        *,
        events_url: str,
        telemetry_url: str,
        mode: str,
        timeout_s: float = 10.0,
    ) -> None:
        self._client = client
        self._key = sdk_key
        self.events_url = events_url.rstrip("/")
        self.telemetry_url = telemetry_url.rstrip("/")
        self.mode = mode
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"Sender(events_url={self.events_url!r}, mode={self.mode!r}, sdk_key='***')"

    async def send(self, batch: Batch) -> Batch:
        """Post every part of ``batch``; returns the parts that failed (to requeue)."""
        failed = Batch()
        if batch.impressions:
            by_flag: dict[str, list[dict[str, Any]]] = {}
            for impression in batch.impressions:
                item = {k: v for k, v in impression.items() if k != "f"}
                by_flag.setdefault(impression["f"], []).append(item)
            body = [{"f": flag, "i": items} for flag, items in by_flag.items()]
            headers = {"SplitSDKImpressionsMode": "DEBUG" if self.mode == "DEBUG" else "OPTIMIZED"}
            if not await self._post(f"{self.events_url}/testImpressions/bulk", body, headers):
                failed.impressions = batch.impressions
        if batch.counts:
            body_counts = {"pf": [{"f": f, "m": m, "rc": n} for (f, m), n in batch.counts.items()]}
            if not await self._post(f"{self.events_url}/testImpressions/count", body_counts):
                failed.counts = batch.counts
        if batch.unique_keys:
            keys = {"keys": [{"f": f, "ks": sorted(ks)} for f, ks in batch.unique_keys.items()]}
            if not await self._post(f"{self.telemetry_url}/v1/keys/ss", keys):
                failed.unique_keys = batch.unique_keys
        if batch.events and not await self._post(f"{self.events_url}/events/bulk", batch.events):
            failed.events = batch.events
        return failed

    async def _post(self, url: str, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        """True when sent, or refused for good; False when worth sending again."""
        try:
            response = await self._client.post(
                url,
                content=json.dumps(body, separators=(",", ":")),
                headers={
                    "Authorization": f"Bearer {self._key}",
                    "SplitSDKVersion": SDK_VERSION,
                    "Content-Type": "application/json",
                    **(headers or {}),
                },
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as error:
            logger.warning("POST %s failed: %s; kept for the next flush", url, error)
            return False
        status = response.status_code
        if status >= 500 or status in (408, 429):
            logger.warning("POST %s answered HTTP %d; kept for the next flush", url, status)
            return False
        if status >= 300:  # a refusal that sending again cannot change: do not block the rest
            logger.error(
                "POST %s answered HTTP %d; the batch is dropped: %s",
                url,
                status,
                response.text[:200],
            )
        return True


class Outbox:
    """Records during a request; sends what is due after the response.

    Without a sender (local runs with a plan file and no SDK key) nothing is
    recorded: there is nowhere to send it.
    """

    def __init__(
        self,
        recorder: Recorder,
        sender: Sender | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.recorder = recorder
        self.sender = sender
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def record(self, key: str, bucketing_key: str | None, results: Mapping[str, Result]) -> None:
        if self.sender is not None:
            self.recorder.record(key, bucketing_key, results, self._now_ms())

    def track(self, event: dict[str, Any]) -> None:
        if self.sender is not None:
            self.recorder.track({**event, "timestamp": self._now_ms()})

    def flush_later(self, background: Callable[[Awaitable[None]], None] | None) -> None:
        """Hand what is due to ``background`` (the runtime's waitUntil)."""
        if self.sender is None or background is None:
            return
        batch = self.recorder.take(self._now_ms())
        if batch:
            background(self._send(batch))

    async def flush(self) -> None:
        """Send everything now, counts included (tests, shutdown)."""
        if self.sender is not None:
            batch = self.recorder.take(self._now_ms(), everything=True)
            if batch:
                await self._send(batch)

    async def _send(self, batch: Batch) -> None:
        assert self.sender is not None
        failed = await self.sender.send(batch)
        if failed:
            self.recorder.put_back(failed, self._now_ms())
