"""One synchronizer run: page Split's changes into the store's staging area,
then publish every unit that is complete.

A plan is made of *units*: the flags with the rule-based segments (one unit,
``splits``, since one splitChanges answer carries both) and each standard
segment (``segment:<name>``). A unit is complete once paged until Split says
``since == till``. A run:

1. takes the store's lease and reads the live plan's cursors and references,
   and whatever an earlier run staged;
2. pages splitChanges from the unit's cursor until both cursors reach till;
3. visits segments: first those the new plan names but the store lacks, then
   any staged halfway, then the live ones in rotation (so a small subrequest
   budget still refreshes every segment over a few runs);
4. publishes, in one store transaction, the complete units whose segments are
   all present; the rest stays staged with its cursor for the next run;
5. records its status and releases the lease.

A changed fingerprint (SDK key, flag-set filter, spec, or plan file content)
starts a *rebuild*: everything is fetched from ``since=-1`` into staging and
replaces the live plan in one transaction only once all of it is complete.
A failed run stages what it fetched (its cursors stay consistent) but
publishes nothing, so the previous plan keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sync.budget import Budget
from sync.errors import BadResponse, OutOfBudget, SpecRejected, SyncError
from worker.plan import check_flag, check_rule_based_segment
from worker.splitdata import Changes, DataError, SegmentChanges, segment_refs
from worker.store import SEGMENT_UNIT, SPLITS_UNIT, Busy, StoreError

__all__ = ["PlanSource", "SyncLimits", "SyncReport", "SyncStore", "run_sync"]

logger = logging.getLogger("flagedge.sync")


class PlanSource(Protocol):
    """Where plans come from: Split's API (``SplitApi``) or a file (``PlanFile``)."""

    async def fingerprint(self) -> str: ...

    async def split_changes(
        self, since: int, rb_since: int, budget: Budget, *, spec: str | None = None
    ) -> Changes: ...

    async def segment_changes(self, name: str, since: int, budget: Budget) -> SegmentChanges: ...


class SyncStore(Protocol):
    """The store's writer side, awaited: a Durable Object stub or a local store."""

    async def begin_sync(self, owner: str, now_ms: int, lease_ms: int) -> dict[str, Any]: ...

    async def stage(self, owner: str, piece: dict[str, Any]) -> None: ...

    async def discard_stage(self, owner: str) -> None: ...

    async def publish(
        self, owner: str, units: list[str], *, piece: dict[str, Any] | None, now_ms: int
    ) -> dict[str, Any]: ...

    async def end_sync(
        self, owner: str, status: dict[str, Any], sync_state: dict[str, Any]
    ) -> None: ...


@dataclass(frozen=True)
class SyncLimits:
    subrequests: int = 50
    seconds: float = 25.0
    piece_bytes: int = 512 * 1024
    lease_margin_s: float = 30.0
    spec_recheck_s: float = 24 * 3600.0


@dataclass
class SyncReport:
    """What a run did; its ``status()`` is what the store records."""

    outcome: str  # ok | partial | failed | busy
    started_ms: int
    duration_ms: int = 0
    requests: int = 0
    error: str | None = None
    published: bool = False
    version: int = 0
    ff_till: int | None = None
    rbs_till: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_success_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "partial")

    def status(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "error": self.error,
            "last_attempt": self.started_ms,
            "last_success": self.last_success_ms,
            "duration_ms": self.duration_ms,
            "requests": self.requests,
            "published": self.published,
            "version": self.version,
            "ff_till": self.ff_till,
            "rbs_till": self.rbs_till,
            "counts": self.counts,
            "pending": self.pending,
            "warnings": self.warnings,
        }

    def line(self) -> str:
        if self.outcome == "busy":
            return f"sync busy: {self.error}; try again"
        counts = self.counts
        text = (
            f"sync {self.outcome}: version {self.version}"
            f"{' (published)' if self.published else ''}, "
            f"flags {counts.get('flags', 0)} (till {self.ff_till}), "
            f"rule-based segments {counts.get('rule_based_segments', 0)} (till {self.rbs_till}), "
            f"segments {counts.get('segments', 0)} ({counts.get('keys', 0)} keys), "
            f"{self.requests} requests, {self.duration_ms} ms"
        )
        if self.pending:
            text += f", pending {len(self.pending)} unit(s)"
        if self.error:
            text += f": {self.error}"
        return text


class _Piece:
    """Changes buffered in memory until they are staged or published."""

    def __init__(self) -> None:
        self.flags: dict[str, dict[str, Any] | None] = {}
        self.rbs: dict[str, dict[str, Any] | None] = {}
        self.keys: dict[str, dict[str, int]] = {}
        self.units: dict[str, dict[str, Any]] = {}
        self.drop: list[str] = []
        self.size = 0

    def __bool__(self) -> bool:
        return bool(self.flags or self.rbs or self.keys or self.units or self.drop)

    def to_json(self, header: dict[str, Any] | None) -> dict[str, Any]:
        piece: dict[str, Any] = {
            "flags": self.flags,
            "rbs": self.rbs,
            "keys": {
                segment: {
                    "added": [k for k, present in keys.items() if present],
                    "removed": [k for k, present in keys.items() if not present],
                }
                for segment, keys in self.keys.items()
            },
            "units": self.units,
            "drop": self.drop,
        }
        if header is not None:
            piece["stage"] = header
        return piece


def _union(refs: Iterable[list[str] | None]) -> set[str]:
    names: set[str] = set()
    for item in refs:
        if item:
            names.update(item)
    return names


class _Run:
    def __init__(
        self,
        source: PlanSource,
        store: SyncStore,
        budget: Budget,
        limits: SyncLimits,
        flag_sets: tuple[str, ...],
        owner: str,
    ) -> None:
        self.source = source
        self.store = store
        self.budget = budget
        self.limits = limits
        self.flag_sets = frozenset(flag_sets)
        self.owner = owner
        self.piece = _Piece()
        self.header: dict[str, Any] = {}
        self.stage_exists = False
        self.sync_state: dict[str, Any] = {}
        self.units: dict[str, dict[str, Any]] = {}
        self.flags: dict[str, list[str]] = {}
        self.rbs: dict[str, list[str]] = {}
        self.live_flags: dict[str, list[str]] = {}
        self.live_rbs: dict[str, list[str]] = {}
        self.live_segments: dict[str, int] = {}
        self.changed_units: set[str] = set()
        self.visited: set[str] = set()
        self.rebuild = False
        self.result: dict[str, Any] = {}
        self.warnings: list[str] = []

    def now_ms(self) -> int:
        return int(self.budget.clock() * 1000)

    # -- buffering -------------------------------------------------------

    async def _flush_if_big(self) -> None:
        if self.piece.size >= self.limits.piece_bytes:
            await self._stage_piece()

    async def _stage_piece(self) -> None:
        if not self.piece:
            return
        self.budget.take()
        await self.store.stage(self.owner, self._piece_json())
        self.stage_exists = True
        self.piece = _Piece()

    def _piece_json(self) -> dict[str, Any]:
        return self.piece.to_json(None if self.stage_exists else self.header)

    def _unit(self, unit: str, data: dict[str, Any], changed: bool) -> None:
        self.units[unit] = data
        self.piece.units[unit] = data
        self.piece.size += 64
        if changed:
            self.changed_units.add(unit)

    # -- the run ---------------------------------------------------------

    async def prepare(self, state: dict[str, Any]) -> None:
        # The flag-set filter decides what is stored, whatever the source: part of the identity.
        sets = ",".join(sorted(self.flag_sets))
        fingerprint = f"{await self.source.fingerprint()}|sets={sets}"
        self.sync_state = dict(state.get("sync") or {})
        stage = state.get("stage")
        version = state["version"]
        # Spec 1.3 is tried again a while after a proxy refused it; like Split's SDKs,
        # a success then refetches everything (a rebuild), since 1.1 carried no
        # rule-based segments.
        probing = self._probe_due()
        if stage and (
            probing
            or stage.get("fingerprint") != fingerprint
            or stage.get("base_version") != version
        ):
            self.budget.take()
            await self.store.discard_stage(self.owner)
            stage = None

        if stage:
            self.rebuild = bool(stage.get("rebuild"))
            self.stage_exists = True
        else:
            self.rebuild = probing or state.get("fingerprint") != fingerprint or version == 0
            self.header = {
                "fingerprint": fingerprint,
                "base_version": version,
                "rebuild": self.rebuild,
            }

        if not self.rebuild:
            self.live_flags = state["flags"]
            self.live_rbs = state["rbs"]
            self.live_segments = state["segments"]
        self.flags = dict(self.live_flags)
        self.rbs = dict(self.live_rbs)
        if stage:
            for target, staged in ((self.flags, stage["flags"]), (self.rbs, stage["rbs"])):
                for name, refs in staged.items():
                    if refs is None:
                        target.pop(name, None)
                    else:
                        target[name] = refs
            self.units = dict(stage["units"])
            self.changed_units = set(self.units)
        self.base_tills = (
            (-1, -1) if self.rebuild else (state.get("ff_till") or -1, state.get("rbs_till") or -1)
        )

    async def fetch_splits(self) -> None:
        unit = self.units.get(SPLITS_UNIT)
        since, rb_since = (unit["since"], unit["rb_since"]) if unit else self.base_tills
        spec = self._spec()
        while True:
            try:
                changes = await self.source.split_changes(since, rb_since, self.budget, spec=spec)
            except SpecRejected:
                if spec != "1.3":
                    raise
                logger.warning("the SDK URL answered 400 to spec 1.3; falling back to spec 1.1")
                self.sync_state["spec_fallback_at"] = self.now_ms()
                spec = "1.1"
                continue
            if spec == "1.3" and self.sync_state.pop("spec_fallback_at", None) is not None:
                logger.info("spec 1.3 works again at the SDK URL")

            changed = self._take_definitions(changes)
            if (changes.ff_till, changes.rbs_till) != (since, rb_since):
                changed = True
            since, rb_since = changes.ff_till, changes.rbs_till
            done = changes.done
            if changed or SPLITS_UNIT in self.units:
                data = {"since": since, "rb_since": rb_since, "done": done}
                self._unit(SPLITS_UNIT, data, changed)
            await self._flush_if_big()
            if done:
                return

    def _spec(self) -> str:
        configured = str(getattr(self.source, "spec", "1.3"))
        if configured == "1.3" and self.sync_state.get("spec_fallback_at") is not None:
            return "1.3" if self._probe_due() else "1.1"
        return configured

    def _probe_due(self) -> bool:
        fallback_at = self.sync_state.get("spec_fallback_at")
        if fallback_at is None or getattr(self.source, "spec", "1.3") != "1.3":
            return False
        return bool(self.now_ms() - fallback_at >= self.limits.spec_recheck_s * 1000)

    def _take_definitions(self, changes: Changes) -> bool:
        changed = False
        for raw in changes.flags:
            keep = raw.get("status") != "ARCHIVED"
            if keep and self.flag_sets:
                sets = raw.get("sets") or ()
                keep = any(s in self.flag_sets for s in sets if isinstance(s, str))
            changed |= self._take(raw, keep, self.flags, self.piece.flags, check_flag, "flag")
        for raw in changes.rbs:
            keep = raw.get("status") != "ARCHIVED"
            changed |= self._take(
                raw, keep, self.rbs, self.piece.rbs, check_rule_based_segment, "rule-based segment"
            )
        return changed

    def _take(
        self,
        raw: dict[str, Any],
        keep: bool,
        current: dict[str, list[str]],
        buffered: dict[str, dict[str, Any] | None],
        check: Callable[[dict[str, Any]], tuple[str, list[str]]],
        what: str,
    ) -> bool:
        name = raw["name"]
        if not keep:
            if name not in current and name not in buffered:
                return False
            current.pop(name, None)
            buffered[name] = None
            self.piece.size += len(name) + 16
            return True
        try:
            body, warnings = check(raw)
        except DataError as error:
            raise BadResponse(f"{what} {name!r} rejected: {error}") from error
        for warning in warnings:
            logger.warning("%s", warning)
            self.warnings.append(warning)
        refs = segment_refs(raw)
        current[name] = refs
        buffered[name] = {"body": body, "refs": refs}
        self.piece.size += len(body) + 32
        return True

    def required_segments(self, flags: dict[str, list[str]], rbs: dict[str, list[str]]) -> set[str]:
        return _union(flags.values()) | _union(rbs.values())

    def _done(self, unit: str) -> bool:
        data = self.units.get(unit)
        return bool(data and data.get("done"))

    async def fetch_segments(self) -> None:
        required = self.required_segments(self.flags, self.rbs)
        for unit in [u for u in self.units if u.startswith(SEGMENT_UNIT)]:
            if unit[len(SEGMENT_UNIT) :] not in required:  # named by nothing any more
                del self.units[unit]
                self.changed_units.discard(unit)
                self.piece.units.pop(unit, None)
                self.piece.keys.pop(unit[len(SEGMENT_UNIT) :], None)
                self.piece.drop.append(unit)
        staged = {u[len(SEGMENT_UNIT) :] for u in self.units if u.startswith(SEGMENT_UNIT)}
        new = sorted(n for n in required if n not in self.live_segments and n not in staged)
        halfway = sorted(n for n in required & staged if not self._done(SEGMENT_UNIT + n))
        first = set(new) | set(halfway)
        rest = sorted(n for n in required if n not in first)
        cursor = self.sync_state.get("cursor")
        if cursor is not None:
            rest = [n for n in rest if n > cursor] + [n for n in rest if n <= cursor]

        for name in (*new, *halfway, *rest):
            await self._fetch_segment(name)
            self.visited.add(name)
            if name in rest:
                self.sync_state["cursor"] = name

    async def _fetch_segment(self, name: str) -> None:
        unit_name = SEGMENT_UNIT + name
        unit = self.units.get(unit_name)
        since = unit["since"] if unit else self.live_segments.get(name, -1)
        changed = unit is not None or name not in self.live_segments
        while True:
            changes = await self.source.segment_changes(name, since, self.budget)
            if changes.added or changes.removed:
                keys = self.piece.keys.setdefault(name, {})
                for key in changes.added:
                    keys[key] = 1
                for key in changes.removed:
                    keys[key] = 0
                self.piece.size += sum(len(k) + 4 for k in changes.added)
                self.piece.size += sum(len(k) + 4 for k in changes.removed)
                changed = True
            changed |= changes.till != since
            since = changes.till
            done = changes.since == changes.till
            if changed:
                self._unit(unit_name, {"since": since, "done": done}, changed)
            await self._flush_if_big()
            if done:
                return

    def publishable(self) -> list[str]:
        """The complete, changed units that can go live together now."""
        done_segments = {
            u[len(SEGMENT_UNIT) :]
            for u in self.units
            if u.startswith(SEGMENT_UNIT) and self._done(u)
        }
        required = self.required_segments(self.flags, self.rbs)
        present = set(self.live_segments) | done_segments
        splits_ready = self._done(SPLITS_UNIT) and required <= present

        if self.rebuild:
            if not splits_ready:
                return []
            return sorted(u for u in self.units if self._done(u))

        units = []
        if splits_ready and SPLITS_UNIT in self.changed_units:
            units.append(SPLITS_UNIT)
        else:
            required = self.required_segments(self.live_flags, self.live_rbs)
        for name in sorted(done_segments & required):
            if SEGMENT_UNIT + name in self.changed_units:
                units.append(SEGMENT_UNIT + name)
        return units

    async def finish(self, failed: bool) -> None:
        units = [] if failed else self.publishable()
        if units:
            self.budget.take_reserved()
            self.result = await self.store.publish(
                self.owner,
                units,
                piece=self._piece_json() if self.piece else None,
                now_ms=self.now_ms(),
            )
            for unit in units:
                self.units.pop(unit, None)
                self.changed_units.discard(unit)
        elif self.piece:
            self.budget.take_reserved()
            await self.store.stage(self.owner, self._piece_json())
            self.stage_exists = True
        self.piece = _Piece()

    def complete(self) -> bool:
        """True when this run brought every unit up to Split's till."""
        required = self.required_segments(self.flags, self.rbs)
        return not self.units and required <= self.visited


async def run_sync(
    source: PlanSource,
    store: SyncStore,
    *,
    limits: SyncLimits | None = None,
    flag_sets: tuple[str, ...] = (),
    clock: Callable[[], float] = time.time,
    sleeper: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    owner: str | None = None,
) -> SyncReport:
    """Run one sync of ``source`` into ``store`` and return what happened.

    Never raises for Split's or the store's failures: they become the
    report's ``failed`` outcome, with the previous plan left serving.
    """
    limits = limits or SyncLimits()
    budget = Budget(limits.subrequests, limits.seconds, clock, sleeper, rng)
    owner = owner or uuid.uuid4().hex
    report = SyncReport(outcome="failed", started_ms=int(budget.started * 1000))
    lease_ms = int((limits.seconds + limits.lease_margin_s) * 1000)

    try:
        budget.take_reserved()
        state = await store.begin_sync(owner, report.started_ms, lease_ms)
    except Busy as error:
        report.outcome, report.error = "busy", str(error)
        report.requests = budget.used
        logger.info("%s", report.line())
        return report
    except Exception as error:  # the store itself is unreachable: nothing to record into
        report.error = f"store unavailable: {error}"
        report.requests = budget.used
        logger.error("%s", report.line())
        return report

    previous = state.get("status") or {}
    report.last_success_ms = previous.get("last_success")
    run = _Run(source, store, budget, limits, flag_sets, owner)
    failure: Exception | None = None
    try:
        await run.prepare(state)
        await run.fetch_splits()
        await run.fetch_segments()
    except OutOfBudget as error:
        report.error = str(error)
    except (SyncError, StoreError) as error:
        failure = error
    except Exception as error:  # a store call that failed in transit, or a bug: report it
        logger.exception("sync run failed unexpectedly")
        failure = error

    try:
        await run.finish(failed=failure is not None)
    except OutOfBudget as error:
        failure = failure or error
    except Exception as error:  # the run's outcome is 'failed' and says why
        failure = failure or error

    report.warnings = [*getattr(source, "warnings", []), *run.warnings]
    report.pending = sorted(run.units)
    if failure is not None:
        report.outcome, report.error = "failed", str(failure)
    else:
        report.outcome = "ok" if run.complete() else "partial"
        report.last_success_ms = report.started_ms
        report.published = bool(run.result)
    report.version = run.result.get("version", state["version"])
    report.counts = run.result.get("counts") or state.get("counts") or {}
    report.ff_till = run.result.get("ff_till", state.get("ff_till"))
    report.rbs_till = run.result.get("rbs_till", state.get("rbs_till"))
    report.duration_ms = int(budget.elapsed * 1000)
    report.requests = budget.used + 1  # the status call below

    try:
        await store.end_sync(owner, report.status(), run.sync_state)
    except Exception as error:  # the run's outcome stands; only its record is lost
        logger.error("could not record the sync status: %s", error)
    log = logger.info if report.outcome != "failed" else logger.error
    log("%s", report.line())
    return report
