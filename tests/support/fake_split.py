"""A fake of Split's SDK API, served over real HTTP on loopback.

It keeps a history of flag, rule-based segment and segment changes, each
with its own change number, and answers as Split's API does:

* ``GET /api/splitChanges?s=1.3&since=F&rbSince=R[&sets=...]``: the latest
  version of every definition changed after the cursor, at most
  ``page_size`` per answer (``t`` is the last change number in the page;
  ``s == t`` when nothing is left). ``s=1.1`` answers the old shape.
* ``GET /api/segmentChanges/<name>?since=C``: the net keys added and removed
  between ``since`` and the page's ``till``.

Faults are queued (``fail_next``) or drawn at random (``fail_rate``), so a
test can inject each failure the synchronizer must survive: a dropped
connection, an answer that never comes, 500, 429 with ``Retry-After``,
truncated or wrongly typed JSON, 401, 400 to spec 1.3, 414.
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULTS = (
    "drop",
    "hang",
    "500",
    "503",
    "429",
    "truncate",
    "badjson",
    "wrongtype",
    "badflag",
    "401",
    "403",
    "414",
    "400",
)


@dataclass
class Fault:
    kind: str
    path: str = ""  # only requests whose path contains this
    retry_after: str = "1"


@dataclass
class _Event:
    number: int
    kind: str  # ff | rbs
    name: str
    body: dict[str, Any]


@dataclass
class FakeSplit:
    sdk_key: str = "server-side-key"
    page_size: int = 3
    proxy_without_13: bool = False  # answer 400 to spec 1.3, like an old Split proxy
    fail_rate: float = 0.0
    fail_kinds: tuple[str, ...] = ("drop", "500", "503", "429", "truncate")
    seed: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _events: list[_Event] = field(default_factory=list)
    _segments: dict[str, list[tuple[int, list[str], list[str]]]] = field(default_factory=dict)
    _number: int = 1_000
    _faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(self.seed)
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- changing the environment ----------------------------------------

    def _next(self) -> int:
        self._number += 1
        return self._number

    def put_flag(self, body: dict[str, Any]) -> int:
        return self._put("ff", body)

    def put_rbs(self, body: dict[str, Any]) -> int:
        return self._put("rbs", body)

    def _put(self, kind: str, body: dict[str, Any]) -> int:
        with self._lock:
            number = self._next()
            body = {**copy.deepcopy(body), "changeNumber": number}
            self._events.append(_Event(number, kind, body["name"], body))
            return number

    def archive_flag(self, name: str) -> int:
        return self._archive("ff", name)

    def archive_rbs(self, name: str) -> int:
        return self._archive("rbs", name)

    def _archive(self, kind: str, name: str) -> int:
        with self._lock:
            current = self.definitions(kind).get(name)
            if current is None:
                raise KeyError(name)
            return self._put(kind, {**current, "status": "ARCHIVED"})

    def change_segment(
        self, name: str, added: Iterable[str] = (), removed: Iterable[str] = ()
    ) -> int:
        with self._lock:
            number = self._next()
            self._segments.setdefault(name, []).append((number, list(added), list(removed)))
            return number

    def load(
        self, split_changes: dict[str, Any], segments: dict[str, list[str]] | None = None
    ) -> None:
        """Add every definition of a splitChanges document, then segment members."""
        flags = split_changes.get("ff", {}).get("d") or split_changes.get("splits") or []
        for raw in split_changes.get("rbs", {}).get("d", []):
            self.put_rbs(raw)
        for raw in flags:
            self.put_flag(raw)
        for name, keys in (segments or {}).items():
            self.change_segment(name, added=keys)

    # -- the environment as Split sees it ---------------------------------

    def definitions(self, kind: str, *, active_only: bool = False) -> dict[str, dict[str, Any]]:
        with self._lock:
            latest: dict[str, dict[str, Any]] = {}
            for event in self._events:
                if event.kind == kind:
                    latest[event.name] = event.body
            if active_only:
                latest = {n: b for n, b in latest.items() if b.get("status") != "ARCHIVED"}
            return latest

    def members(self, name: str, at: int | None = None) -> set[str]:
        with self._lock:
            keys: set[str] = set()
            for number, added, removed in self._segments.get(name, []):
                if at is not None and number > at:
                    break
                keys |= set(added)
                keys -= set(removed)
            return keys

    def till(self, kind: str) -> int:
        with self._lock:
            numbers = [e.number for e in self._events if e.kind == kind]
            return max(numbers) if numbers else -1

    # -- faults ------------------------------------------------------------

    def fail_next(self, kind: str, path: str = "", retry_after: str = "1", times: int = 1) -> None:
        assert kind in FAULTS, kind
        with self._lock:
            self._faults.extend(Fault(kind, path, retry_after) for _ in range(times))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.path in path:
                    return self._faults.pop(index)
            if self.fail_rate and self._rng.random() < self.fail_rate:
                return Fault(self._rng.choice(self.fail_kinds), retry_after="0")
        return None

    # -- answers -----------------------------------------------------------

    def _page(self, kind: str, since: int) -> tuple[list[dict[str, Any]], int]:
        latest: dict[str, _Event] = {}
        for event in self._events:
            if event.kind == kind and event.number > since:
                latest[event.name] = event
        ordered = sorted(latest.values(), key=lambda e: e.number)
        if not ordered:
            return [], since
        page = ordered[: self.page_size]
        till = page[-1].number
        page = [e for e in ordered if e.number <= till]
        return [copy.deepcopy(e.body) for e in page], till

    def split_changes(self, params: dict[str, str]) -> tuple[int, Any]:
        spec = params.get("s", "1.1")
        since = int(params.get("since", "-1"))
        with self._lock:
            flags, till = self._page("ff", since)
            if spec != "1.3":
                return 200, {"splits": flags, "since": since, "till": till}
            rb_since = int(params.get("rbSince", "-1"))
            rbs, rb_till = self._page("rbs", rb_since)
        return 200, {
            "ff": {"d": flags, "s": since, "t": till},
            "rbs": {"d": rbs, "s": rb_since, "t": rb_till},
        }

    def segment_changes(self, name: str, params: dict[str, str]) -> tuple[int, Any]:
        since = int(params.get("since", "-1"))
        with self._lock:
            later = [n for n, _, _ in self._segments.get(name, []) if n > since]
            till = later[: self.page_size][-1] if later else since
            before = self.members(name, since) if since != -1 else set()
            after = self.members(name, till)
        return 200, {
            "name": name,
            "added": sorted(after - before),
            "removed": sorted(before - after),
            "since": since,
            "till": till,
        }

    # -- serving -----------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    def start(self) -> FakeSplit:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append((url.path, params))

        if handler.headers.get("Authorization") != f"Bearer {self.sdk_key}":
            self._send(handler, 401, {"message": "invalid api key"})
            return
        fault = self._take_fault(url.path)
        if fault is not None and self._inject(handler, fault):
            return

        if url.path == "/api/splitChanges":
            if params.get("s") == "1.3" and self.proxy_without_13:
                self._send(handler, 400, {"message": "unsupported spec"})
                return
            status, body = self.split_changes(params)
        elif url.path.startswith("/api/segmentChanges/"):
            status, body = self.segment_changes(url.path.rsplit("/", 1)[1], params)
        else:
            status, body = 404, {"message": "not found"}
        self._send(handler, status, body)

    def _inject(self, handler: BaseHTTPRequestHandler, fault: Fault) -> bool:
        kind = fault.kind
        if kind == "drop":
            handler.close_connection = True
            handler.connection.close()
            return True
        if kind == "hang":
            self._release.wait(10)
            handler.close_connection = True
            return True
        if kind in ("500", "503", "401", "403", "414", "400"):
            self._send(handler, int(kind), {"message": f"injected {kind}"})
            return True
        if kind == "429":
            self._send(handler, 429, {"message": "slow down"}, {"Retry-After": fault.retry_after})
            return True
        if kind == "truncate":
            body = json.dumps({"ff": {"d": [], "s": -1, "t": -1}}).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body) * 2))
            handler.end_headers()
            handler.wfile.write(body)
            handler.close_connection = True
            return True
        if kind == "badjson":
            self._send_raw(handler, 200, b'{"ff": {"d": [')
            return True
        if kind == "wrongtype":
            self._send(
                handler,
                200,
                {
                    "ff": {"d": "not a list", "s": "yesterday", "t": 3},
                    "name": 5,
                    "added": "k",
                    "since": "x",
                    "till": None,
                },
            )
            return True
        if kind == "badflag":
            self._send(
                handler,
                200,
                {
                    "ff": {
                        "d": [{"name": "broken", "defaultTreatment": "off", "conditions": "nope"}],
                        "s": -1,
                        "t": 5,
                    },
                    "rbs": {"d": [], "s": -1, "t": -1},
                },
            )
            return True
        raise AssertionError(kind)

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send_raw(handler, status, json.dumps(payload).encode(), headers)

    @staticmethod
    def _send_raw(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
