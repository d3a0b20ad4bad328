"""flagedge's per-evaluation time inside Pyodide 0.28.2 (the Worker's runtime), under Node.

    ./scripts/test -q tests/worker    # once, so tests/node/node_modules exists
    .venv/bin/python -m bench.pyodide_eval

The same plans and loop as bench.evaluator, run by the bundle's own modules
(pure-Python murmur3, as in the Worker) in the test harness's Pyodide.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.evaluator import ITERATIONS
from bench.plans import CASES
from flagedge.bundle import build_bundle
from tests.support.worker_harness import WorkerHarness, write_bundle

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="flagedge-bench-"))
    try:
        write_bundle(build_bundle(), directory)
        (directory / "bench").mkdir()
        for name in ("__init__.py", "plans.py"):
            shutil.copy(ROOT / "bench" / name, directory / "bench" / name)
        harness = WorkerHarness(directory, {})
        try:
            print(
                f"Pyodide {harness.versions['pyodide']} "
                f"(CPython {harness.versions['python']}) under Node"
            )
            print("| case | flagedge µs/eval in Pyodide |")
            print("|---|---|")
            for case in CASES:
                iterations = max(ITERATIONS[case] // 4, 100)
                runs = harness.python(
                    "import time\n"
                    "from bench.plans import run_flagedge\n"
                    f"[run_flagedge({case!r}, {iterations}, time.perf_counter) for _ in range(5)]"
                )
                median = sorted(runs)[len(runs) // 2]
                unit = " (50 flags per call)" if case == "50-flag bulk" else ""
                print(f"| {case}{unit} | {median:.2f} |")
        finally:
            harness.close()
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
