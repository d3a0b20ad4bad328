"""Per-evaluation time of flagedge and of splitio-client's evaluator, side by side.

    .venv/bin/pip install -e '.[bench]'     # splitio-client with its C murmur3 (mmh3cffi)
    .venv/bin/python -m bench.evaluator

Both run in this one process on the same plans and keys, alternating, five
rounds each; the table shows the medians and the ratio (splitio-client time
over flagedge time). splitio-client is timed the way its get_treatment(s)
evaluates: build the evaluation context from its in-memory storages, then
evaluate (no impressions, no telemetry). flagedge is timed through
``Evaluator.evaluate`` / ``evaluate_many``, input validation included.
"""

from __future__ import annotations

import logging
import platform
import queue
import statistics
import time
from typing import Any

from bench.plans import ATTRIBUTES, CASES, KEYS, run_flagedge

ROUNDS = 5
ITERATIONS = {
    "single flag": 20_000,
    "50-flag bulk": 400,
    "segment-heavy": 10_000,
    "dependency chain (10)": 5_000,
}


def run_splitio(case: str, iterations: int, clock: Any) -> float:
    from splitio.engine.evaluator import EvaluationDataFactory, Evaluator
    from splitio.engine.splitters import Splitter
    from splitio.models import segments, splits
    from splitio.models.fallback_config import FallbackTreatmentCalculator
    from splitio.storage.inmemmory import (
        InMemoryRuleBasedSegmentStorage,
        InMemorySegmentStorage,
        InMemorySplitStorage,
    )

    spec = CASES[case]()
    events: queue.Queue[Any] = queue.Queue()
    flag_storage = InMemorySplitStorage(events)
    flag_storage.update([splits.from_raw(f) for f in spec["flags"]], [], 1)
    segment_storage = InMemorySegmentStorage(events)
    for name, keys in spec["segments"].items():
        segment_storage.put(
            segments.from_raw({"name": name, "added": keys, "removed": [], "till": 1})
        )
    data = EvaluationDataFactory(
        flag_storage, segment_storage, InMemoryRuleBasedSegmentStorage(events)
    )
    evaluator = Evaluator(Splitter(), FallbackTreatmentCalculator(None))
    names = spec["names"]
    started = clock()
    if len(names) == 1:
        name = names[0]
        for i in range(iterations):
            key = KEYS[i % 2000]
            evaluator.eval_with_context(key, None, name, ATTRIBUTES, data.context_for(key, names))
    else:
        for i in range(iterations):
            key = KEYS[i % 2000]
            evaluator.eval_many_with_context(
                key, None, names, ATTRIBUTES, data.context_for(key, names)
            )
    return (clock() - started) / iterations * 1e6


def main() -> None:
    logging.getLogger("splitio").setLevel(logging.CRITICAL)
    try:
        import mmh3cffi  # noqa: F401

        splitio_hash = "C murmur3 (mmh3cffi)"
    except ImportError:
        splitio_hash = "pure-Python murmur3 (install '.[bench]' for mmh3cffi)"
    import splitio

    print(
        f"machine: {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    print(f"splitio-client {splitio.__version__} with {splitio_hash}")
    print()
    print("| case | flagedge µs/eval | splitio-client µs/eval | ratio |")
    print("|---|---|---|---|")
    for case in CASES:
        ours, theirs = [], []
        for _ in range(ROUNDS):
            ours.append(run_flagedge(case, ITERATIONS[case], time.perf_counter))
            theirs.append(run_splitio(case, ITERATIONS[case], time.perf_counter))
        a, b = statistics.median(ours), statistics.median(theirs)
        unit = " (50 flags per call)" if case == "50-flag bulk" else ""
        print(f"| {case}{unit} | {a:.2f} | {b:.2f} | {b / a:.1f}x |")


if __name__ == "__main__":
    main()
