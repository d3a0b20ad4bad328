"""A rollout plan read from a JSON file (Split's "localhost" idea).

The file holds a splitChanges answer, in the 1.3 shape (``ff``, ``rbs``
optional) or the older ``splits``/``since``/``till`` one, plus an optional
``"segments": {"<name>": ["key", ...]}``. It is served to the synchronizer
as if it were Split's API answering ``since=-1``, so a file takes the same
path into the store as a live environment. A segment the plan names but the
file lacks is served empty, with a warning.

The fingerprint is the file's hash: any edit rebuilds the plan from scratch,
since a file has no history to page through.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from sync.budget import Budget
from sync.errors import BadResponse
from worker.inputs import parse_json
from worker.splitdata import Changes, DataError, SegmentChanges, parse_split_changes

__all__ = ["PlanFile", "load_plan_file"]

logger = logging.getLogger("flagedge.sync")

MAX_PLAN_BYTES = 512 << 20


def load_plan_file(path: Path) -> tuple[Changes, dict[str, list[str]], bytes]:
    """Read and check a plan file: its changes, its segments and its raw bytes."""
    try:
        if not path.exists():
            raise BadResponse(f"plan file {path} does not exist")
        if not path.is_file():
            raise BadResponse(f"plan file {path} is not a regular file")
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise BadResponse(f"plan file {path} is over {MAX_PLAN_BYTES >> 20} MB")
        raw = path.read_bytes()
    except OSError as error:
        raise BadResponse(f"cannot read plan file {path}: {error.strerror or error}") from error
    try:
        doc = parse_json(raw, max_depth=64)
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nested too deep
        raise BadResponse(f"plan file {path} is not valid JSON: {error}") from error
    try:
        changes = parse_split_changes(doc)
    except DataError as error:
        raise BadResponse(f"plan file {path}: {error}") from error

    segments: dict[str, list[str]] = {}
    declared: Any = doc.get("segments", {})
    if not isinstance(declared, dict):
        raise BadResponse(f"plan file {path}: 'segments' must map segment names to key lists")
    for name, keys in declared.items():
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise BadResponse(f"plan file {path}: segment {name!r} must be a list of strings")
        segments[name] = keys
    return changes, segments, raw


class PlanFile:
    """A plan source backed by one JSON file, re-read on every run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._changes: Changes | None = None
        self._segments: dict[str, list[str]] = {}
        self._digest = ""

    def __repr__(self) -> str:
        return f"PlanFile({str(self.path)!r})"

    def _load(self) -> Changes:
        if self._changes is None:
            self._changes, self._segments, raw = load_plan_file(self.path)
            self._digest = hashlib.sha256(raw).hexdigest()
        return self._changes

    async def fingerprint(self) -> str:
        self._changes = None  # every run sees the file as it is now
        self.warnings = []
        self._load()
        return "file:" + self._digest

    @property
    def _segment_till(self) -> int:
        return max(self._load().ff_till, 1)

    async def split_changes(
        self, since: int, rb_since: int, budget: Budget, *, spec: str | None = None
    ) -> Changes:
        changes = self._load()
        fresh_ff = since == -1 or since < changes.ff_till
        fresh_rbs = rb_since == -1 or rb_since < changes.rbs_till
        return Changes(
            flags=changes.flags if fresh_ff else [],
            ff_since=since,
            ff_till=max(changes.ff_till, since),
            rbs=changes.rbs if fresh_rbs else [],
            rbs_since=rb_since,
            rbs_till=max(changes.rbs_till, rb_since),
        )

    async def segment_changes(self, name: str, since: int, budget: Budget) -> SegmentChanges:
        till = self._segment_till
        keys = self._segments.get(name)
        if keys is None:
            warning = f"segment {name!r} is named by the plan but not in {self.path.name}; empty"
            if warning not in self.warnings:
                self.warnings.append(warning)
                logger.warning("%s", warning)
            keys = []
        if since >= till:
            return SegmentChanges(name, [], [], since, since)
        return SegmentChanges(name, list(keys), [], since, till)
