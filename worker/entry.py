"""The Worker's entry point: the only module that touches the JavaScript runtime.

* ``Default`` (a ``WorkerEntrypoint``): ``fetch`` adapts the runtime's request
  to ``worker.api`` and back; ``scheduled`` runs the synchronizer.
* ``FlagStore`` (a SQLite-backed ``DurableObject``, one per environment,
  addressed by name): the plan store, exposed over RPC. Its methods take and
  return JSON text, so nothing depends on how the runtime converts values, and
  a store error crosses RPC as ``{"error": kind, "message": ...}``.
* ``DurableObjectSql``: the ``worker.sql.Sql`` seam over ``ctx.storage.sql``
  and ``transactionSync``.
* ``FetchTransport``: an ``httpx`` transport over the runtime's ``fetch``, so
  the synchronizer runs the same ``httpx`` code here as on the command line.

Everything below this module is plain Python shared with ``flagedge dev``.
The isolate keeps one ``Runtime`` (settings, plan cache, HTTP client) between
requests; it is built on the first request, never at import time (the
runtime snapshots the module's top level at deploy).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]
from workers import DurableObject, Response, WorkerEntrypoint  # type: ignore[import-not-found]

from sync import limits_from, make_source, run_sync
from sync.runner import SyncReport
from worker.api import App, Request
from worker.cache import PlanCache
from worker.impressions import Outbox, Recorder, Sender
from worker.settings import Settings
from worker.store import Busy, LeaseLost, PlanStore, StoreError

__all__ = ["Default", "DurableObjectSql", "FetchTransport", "FlagStore"]

logger = logging.getLogger("flagedge.worker")

T = TypeVar("T")

STORE_BINDING = "FLAG_STORE"
STORE_NAME = "plan"

# -- the Durable Object -------------------------------------------------------


def _row(raw: Any) -> list[Any]:
    return raw.to_py() if hasattr(raw, "to_py") else list(raw)


class DurableObjectSql:
    """``Sql`` over the Durable Object's SQL API."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self._sql = storage.sql

    def execute(self, query: str, *params: object) -> list[list[Any]]:
        cursor = self._sql.exec(query, *params)
        return [_row(row) for row in cursor.raw()]

    def transaction(self, fn: Callable[[], T]) -> T:
        outcome: list[Any] = []
        failure: list[BaseException] = []

        def body() -> None:
            try:
                outcome.append(fn())
            except BaseException as error:
                failure.append(error)
                raise  # through JavaScript, so transactionSync rolls back

        try:
            self._storage.transactionSync(body)
        except BaseException:
            if failure:
                raise failure[0] from None
            raise
        return outcome[0]  # type: ignore[no-any-return]


def _reply(call: Callable[[], Any]) -> str:
    """Run a store call; its result or its error as JSON text for RPC."""
    try:
        return json.dumps({"ok": call()}, separators=(",", ":"))
    except Busy as error:
        kind, message = "busy", str(error)
    except LeaseLost as error:
        kind, message = "lease-lost", str(error)
    except StoreError as error:
        kind, message = "store", str(error)
    return json.dumps({"error": kind, "message": message})


class FlagStore(DurableObject):  # type: ignore[misc]
    """The plan store of one environment, over RPC."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.store = PlanStore(DurableObjectSql(ctx.storage))

    def version(self) -> int:
        return self.store.version()

    def read_plan(self, known_version: int, max_segment_size: int) -> str:
        return _reply(lambda: self.store.read_plan(int(known_version), int(max_segment_size)))

    def memberships(self, key: str, segments: str) -> str:
        return _reply(lambda: self.store.memberships(key, json.loads(segments)))

    def status(self) -> str:
        return _reply(self.store.status)

    def begin_sync(self, owner: str, now_ms: int, lease_ms: int) -> str:
        return _reply(lambda: self.store.begin_sync(owner, int(now_ms), int(lease_ms)))

    def stage(self, owner: str, piece: str) -> str:
        return _reply(lambda: self.store.stage(owner, json.loads(piece)))

    def discard_stage(self, owner: str) -> str:
        return _reply(lambda: self.store.discard_stage(owner))

    def publish(self, owner: str, units: str, piece: str, now_ms: int) -> str:
        return _reply(
            lambda: self.store.publish(
                owner, json.loads(units), piece=json.loads(piece), now_ms=int(now_ms)
            )
        )

    def end_sync(self, owner: str, status: str, sync_state: str) -> str:
        return _reply(
            lambda: self.store.end_sync(owner, json.loads(status), json.loads(sync_state))
        )


class DurableObjectStore:
    """The store as the Worker sees it: RPC to ``FlagStore``, one call per method."""

    _ERRORS: dict[str, type[StoreError]] = {
        "busy": Busy,
        "lease-lost": LeaseLost,
        "store": StoreError,
    }

    def __init__(self, stub: Any) -> None:
        self.stub = stub
        self.calls = 0

    async def _call(self, method: str, *args: Any) -> Any:
        self.calls += 1
        text = await getattr(self.stub, method)(*args)
        reply = json.loads(str(text))
        if "error" in reply:
            raise self._ERRORS.get(reply["error"], StoreError)(reply["message"])
        return reply["ok"]

    async def read_plan(self, known_version: int, max_segment_size: int) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call(
            "read_plan", known_version, max_segment_size
        )
        return result

    async def memberships(self, key: str, segments: list[str]) -> list[str]:
        result: list[str] = await self._call("memberships", key, json.dumps(segments))
        return result

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("status")
        return result

    async def begin_sync(self, owner: str, now_ms: int, lease_ms: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("begin_sync", owner, now_ms, lease_ms)
        return result

    async def stage(self, owner: str, piece: dict[str, Any]) -> None:
        await self._call("stage", owner, json.dumps(piece, separators=(",", ":")))

    async def discard_stage(self, owner: str) -> None:
        await self._call("discard_stage", owner)

    async def publish(
        self, owner: str, units: list[str], *, piece: dict[str, Any] | None, now_ms: int
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "publish", owner, json.dumps(units), json.dumps(piece, separators=(",", ":")), now_ms
        )
        return result

    async def end_sync(
        self, owner: str, status: dict[str, Any], sync_state: dict[str, Any]
    ) -> None:
        await self._call("end_sync", owner, json.dumps(status), json.dumps(sync_state))


# -- httpx over the runtime's fetch -------------------------------------------

_DROP_REQUEST = {"host", "content-length", "connection", "transfer-encoding"}
_DROP_RESPONSE = {"content-encoding", "content-length", "transfer-encoding"}


class FetchTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with the runtime's ``fetch`` (Pyodide has no sockets)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        init: dict[str, Any] = {
            "method": request.method,
            "headers": [
                [k, v] for k, v in request.headers.multi_items() if k.lower() not in _DROP_REQUEST
            ],
        }
        if body:
            init["body"] = to_js(body)
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if timeout:
            init["signal"] = js.AbortSignal.timeout(int(timeout * 1000))
        try:
            response = await js.fetch(
                str(request.url), to_js(init, dict_converter=js.Object.fromEntries)
            )
            content = (await response.arrayBuffer()).to_bytes()
        except JsException as error:
            name = getattr(error, "name", "") or ""
            if "Timeout" in name or "Abort" in name or "timed out" in str(error):
                raise httpx.ReadTimeout(str(error), request=request) from error
            raise httpx.ConnectError(str(error), request=request) from error
        headers = [
            (str(k), str(v))
            for k, v in (entry.to_py() for entry in response.headers.entries())
            if str(k).lower() not in _DROP_RESPONSE
        ]
        return httpx.Response(response.status, headers=headers, content=content, request=request)


# -- the isolate's state and the entry point -----------------------------------


class Runtime:
    """What one isolate keeps between requests: settings, plan cache, HTTP client."""

    def __init__(self, env: Any) -> None:
        # stdout is the Worker's console.log; one line per sync and per warning.
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
        self.settings = Settings.load(lambda name: _env_text(env, name))
        namespace = getattr(env, STORE_BINDING)
        self.store = DurableObjectStore(namespace.getByName(STORE_NAME))
        self.cache = PlanCache(
            self.store,
            interval_s=self.settings.cache_seconds,
            max_segment_size=self.settings.large_segment_size,
            fallbacks=self.settings.fallback_treatments,
        )
        self.client = httpx.AsyncClient(transport=FetchTransport())
        settings = self.settings
        sender = None
        if settings.sdk_key:
            sender = Sender(
                self.client,
                settings.sdk_key,
                events_url=settings.events_url,
                telemetry_url=settings.telemetry_url,
                mode=settings.impressions_mode,
            )
        self.outbox = Outbox(Recorder(settings.impressions_mode), sender)
        self.app = App(self.cache, settings=settings, outbox=self.outbox, sync=self.sync)

    async def sync(self) -> SyncReport:
        source = make_source(self.settings, self.client)
        report = await run_sync(
            source, self.store, limits=limits_from(self.settings), flag_sets=self.settings.flag_sets
        )
        if report.published:
            self.cache.expire()
        return report


def _env_text(env: Any, name: str) -> str | None:
    value = getattr(env, name, None)
    if value is None:
        return None
    return str(value)


_runtime: Runtime | None = None


def runtime(env: Any) -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(env)
    return _runtime


class Default(WorkerEntrypoint):  # type: ignore[misc]
    """The Worker: HTTP (``fetch``), cron (``scheduled``) and RPC methods.

    RPC, for another Worker through a service binding (``env.FLAGS.evaluate(...)``);
    each returns what the matching HTTP route answers, and raises an Error with
    the 400's message on bad input:

    * ``evaluate(key, flag, attributes=None, bucketing_key=None)`` ->
      ``{"treatment", "label", "config", "changeNumber"}``
    * ``evaluate_many(key, flags, attributes=None, bucketing_key=None)`` ->
      ``{flag: {...}}``
    * ``evaluate_sets(key, flag_sets, attributes=None, bucketing_key=None)`` ->
      ``{flag: {...}}``
    * ``track(key, traffic_type, event_type, value=None, properties=None)`` -> ``True``
    * ``health()`` -> the ``/health`` body
    """

    def _background(self, job: Any) -> None:
        self.ctx.waitUntil(job)

    async def fetch(self, request: Any) -> Any:
        rt = runtime(self.env)
        url = urlsplit(str(request.url))
        target = url.path + ("?" + url.query if url.query else "")
        headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
        method = str(request.method)
        body = await request.bytes() if method not in ("GET", "HEAD") else b""
        answer = await rt.app.handle(
            Request.build(method, target, headers, bytes(body)), self._background
        )
        if answer.status in (204, 304) or method == "HEAD":
            return Response(None, status=answer.status, headers=answer.headers)
        return Response(answer.body, status=answer.status, headers=answer.headers)

    async def scheduled(self, controller: Any, env: Any, ctx: Any) -> None:
        await runtime(self.env).sync()  # the run logs its own summary line

    async def evaluate(
        self, key: Any, flag: Any, attributes: Any = None, bucketing_key: Any = None
    ) -> Any:
        return await runtime(self.env).app.rpc(
            "evaluate",
            self._background,
            key=key,
            flag=flag,
            attributes=attributes,
            bucketing_key=bucketing_key,
        )

    async def evaluate_many(
        self, key: Any, flags: Any, attributes: Any = None, bucketing_key: Any = None
    ) -> Any:
        return await runtime(self.env).app.rpc(
            "evaluate_many",
            self._background,
            key=key,
            flags=flags,
            attributes=attributes,
            bucketing_key=bucketing_key,
        )

    async def evaluate_sets(
        self, key: Any, flag_sets: Any, attributes: Any = None, bucketing_key: Any = None
    ) -> Any:
        return await runtime(self.env).app.rpc(
            "evaluate_sets",
            self._background,
            key=key,
            flag_sets=flag_sets,
            attributes=attributes,
            bucketing_key=bucketing_key,
        )

    async def track(
        self,
        key: Any,
        traffic_type: Any,
        event_type: Any,
        value: Any = None,
        properties: Any = None,
    ) -> Any:
        return await runtime(self.env).app.rpc(
            "track",
            self._background,
            key=key,
            traffic_type=traffic_type,
            event_type=event_type,
            value=value,
            properties=properties,
        )

    async def health(self) -> Any:
        return await runtime(self.env).app.rpc("health", None)
