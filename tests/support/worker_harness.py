"""pytest's side of the Pyodide harness (tests/node/harness.mjs).

``WorkerHarness`` starts Node with Pyodide, loads the exact module set that
``flagedge.bundle.build_bundle`` produces (what the Pulumi program uploads)
and exchanges one JSON object per line with it.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagedge.bundle import Bundle

ROOT = Path(__file__).resolve().parents[2]
HARNESS_DIR = ROOT / "tests" / "node"


class HarnessError(Exception):
    """The harness or the Worker inside it failed; the message has the traceback."""


def node_or_explain() -> str:
    node = shutil.which("node")
    if node is None:
        raise HarnessError("the Worker tests need Node.js 20+ on PATH (see the README)")
    if not (HARNESS_DIR / "node_modules" / "pyodide").exists():
        raise HarnessError(
            "tests/node/node_modules is missing: run ./scripts/test, which runs "
            "`npm ci` there, or `npm ci --prefix tests/node`"
        )
    return node


def write_bundle(bundle: Bundle, directory: Path) -> Path:
    """The bundle's modules as files, as the runtime exposes them under /session/metadata."""
    for module in bundle.modules:
        target = directory / module.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(module.content)
    return directory


@dataclass
class HarnessResponse:
    status: int
    headers: dict[str, str]
    body: str
    wait_until: int
    durable_object_calls: int
    ms: float
    cpu_ms: float = 0.0
    logs: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


class WorkerHarness:
    def __init__(
        self,
        bundle_dir: Path,
        env: dict[str, str],
        *,
        timeout_s: float = 180,
        stores: dict[str, str] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.logs: list[str] = []
        self._next = 0
        self._process = subprocess.Popen(
            [node_or_explain(), str(HARNESS_DIR / "harness.mjs")],
            cwd=HARNESS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._answers: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        assert self._process.stdout is not None and self._process.stderr is not None
        threading.Thread(
            target=self._pump, args=(self._process.stdout, self._answers.put), daemon=True
        ).start()
        threading.Thread(
            target=self._pump, args=(self._process.stderr, self._stderr.append), daemon=True
        ).start()
        started = self.call("start", bundle=str(bundle_dir), env=env, stores=stores or {})
        self.timings: dict[str, float] = started.pop("timings")
        self.versions = started

    @staticmethod
    def _pump(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line)

    def call(self, op: str, **fields: Any) -> Any:
        self._next += 1
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"id": self._next, "op": op, **fields}) + "\n")
        self._process.stdin.flush()
        try:
            line = self._answers.get(timeout=self.timeout_s)
        except queue.Empty:
            raise HarnessError(
                f"no answer to {op!r} in {self.timeout_s}s; stderr: {''.join(self._stderr)[-2000:]}"
            ) from None
        answer = json.loads(line)
        self.logs.extend(answer.get("logs", []))
        if not answer["ok"]:
            raise HarnessError(answer["error"])
        return answer["result"]

    def fetch(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: str | bytes | None = None,
        host: str = "http://flagedge.test",
    ) -> HarnessResponse:
        if isinstance(body, bytes):
            body = body.decode()
        since = len(self.logs)
        result = self.call(
            "fetch", method=method, url=host + path, headers=headers or {}, body=body
        )
        return HarnessResponse(
            status=result["status"],
            headers=result["headers"],
            body=result["body"],
            wait_until=result["waitUntil"],
            durable_object_calls=result["durableObjectCalls"],
            ms=result["ms"],
            cpu_ms=result["cpuMs"],
            logs=self.logs[since:],
        )

    def scheduled(self, cron: str = "* * * * *") -> Any:
        return self.call("scheduled", cron=cron)

    def drain(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("drain")
        return result

    def rpc(self, method: str, *args: Any) -> Any:
        return self.call("rpc", method=method, args=list(args))

    def python(self, code: str) -> Any:
        return self.call("python", code=code)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("stats")
        return result

    def close(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
