"""Split's official Python SDK (splitio-client) as a test oracle.

Its evaluator is driven through its in-memory storages, not its localhost
file mode, which rewrites a missing ``algo`` before evaluating. Where it
disagrees with flagedge's reference (the JavaScript SDK, or Java where the
reference says so), callers account for that explicitly.
"""

from __future__ import annotations

import copy
import logging
import queue
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from splitio.engine.evaluator import EvaluationDataFactory, Evaluator
from splitio.engine.splitters import Splitter
from splitio.models import rule_based_segments, segments, splits
from splitio.models.fallback_config import FallbackTreatmentCalculator
from splitio.storage.inmemmory import (
    InMemoryRuleBasedSegmentStorage,
    InMemorySegmentStorage,
    InMemorySplitStorage,
)

logging.getLogger("splitio").setLevel(logging.CRITICAL)  # it logs every odd input


@dataclass(frozen=True)
class OracleResult:
    treatment: str
    label: str | None
    config: str | None


class Oracle:
    def __init__(
        self,
        flags: Iterable[Mapping[str, Any]],
        rule_based: Iterable[Mapping[str, Any]] = (),
        segment_keys: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        events: queue.Queue[Any] = queue.Queue()
        self.flags = InMemorySplitStorage(events)
        self.rbs = InMemoryRuleBasedSegmentStorage(events)
        self.segments = InMemorySegmentStorage(events)
        parsed = []
        for raw in flags:
            raw = copy.deepcopy(dict(raw))
            raw.setdefault("changeNumber", 1)  # its parser requires one
            parsed.append(splits.from_raw(raw))
        self.flags.update(parsed, [], 1)
        self.rbs.update([rule_based_segments.from_raw(dict(r)) for r in rule_based], [], 1)
        for name, keys in (segment_keys or {}).items():
            self.segments.put(
                segments.from_raw({"name": name, "added": list(keys), "removed": [], "till": 1})
            )
        self.data = EvaluationDataFactory(self.flags, self.segments, self.rbs)
        self.evaluator = Evaluator(Splitter(), FallbackTreatmentCalculator(None))

    def evaluate(
        self,
        key: str,
        flag: str,
        attributes: Mapping[str, Any] | None = None,
        bucketing_key: str | None = None,
    ) -> OracleResult:
        context = self.data.context_for(key, [flag])
        result = self.evaluator.eval_with_context(key, bucketing_key, flag, attributes, context)
        return OracleResult(
            result["treatment"], result["impression"]["label"], result["configurations"]
        )
