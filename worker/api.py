"""The HTTP API, framework-free: a ``Request`` in, a ``Response`` out.

The Worker's entry point and ``flagedge dev`` both adapt their own request
types to these classes, so every route is written and tested once. flagedge's
own routes answer JSON, errors as ``{"error": "<message>"}``:

* ``GET /treatment?key=K&flag=F[&bucketingKey=B][&attributes=<JSON object>]``
* ``POST /treatments`` ``{"key", "bucketingKey"?, "attributes"?, "flags"?, "flagSets"?}``
* ``POST /track`` ``{"key", "trafficType", "eventType", "value"?, "properties"?}``: 202
* ``GET /health``: 200 while a plan is served, 503 before the first sync
* ``POST /admin/sync``: ``Authorization: Bearer <admin token>``

Compatible routes, each answering as the thing it replaces: Split's
split-evaluator (``/client/...``, ``/admin/healthcheck``; ``worker.compat``),
Split's Cloudflare template (``GET /get-treatment``, plain text) and the
OpenFeature Remote Evaluation Protocol (``/ofrep/v1/...``; ``worker.ofrep``).

When an evaluation token is configured, every evaluation route needs it, as
``Authorization: Bearer <token>``, a bare ``Authorization: <token>`` (what
split-evaluator's callers send) or ``X-API-Key: <token>`` (OFREP). CORS
headers are added for the configured browser origins.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from worker.cache import PlanCache
from worker.impressions import Outbox
from worker.inputs import (
    InputError,
    parse_attributes,
    parse_event,
    parse_flag_name,
    parse_json,
    parse_key,
)
from worker.results import Result
from worker.settings import Settings

if TYPE_CHECKING:
    from sync.runner import SyncReport

__all__ = ["App", "Background", "HttpError", "Request", "Response"]

logger = logging.getLogger("flagedge.api")

Background = Callable[[Awaitable[None]], None]
MAX_NAMES = 1000  # flags (or flag sets) in one call
MAX_BODY = 1 << 20  # bytes; the same limit in the Worker and under flagedge dev
Handler = Callable[["Request"], Awaitable["Response"]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lowercase names
    body: bytes = b""

    @classmethod
    def build(
        cls,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> Request:
        """From a request target such as ``/treatment?key=a&flag=b`` (or an absolute URL)."""
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path, _, query = target.partition("?")
        return cls(
            method=method.upper(),
            path=path or "/",
            query=parse_qs(query, keep_blank_values=True),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=body,
        )

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def single(self, name: str) -> str | None:
        """``param``, refusing a parameter given more than once."""
        values = self.query.get(name)
        if values and len(values) > 1:
            raise HttpError(400, f"{name} is given {len(values)} times; give it once")
        return values[0] if values else None

    def json(self) -> Any:
        if not self.body:
            raise HttpError(400, "the request body is empty; send a JSON object")
        try:
            return parse_json(self.body)
        except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nested too deep
            raise HttpError(400, f"the request body is not valid JSON: {error}") from error


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        try:
            body = text.encode()
        except UnicodeEncodeError:  # a lone surrogate echoed back: escape it as JSON allows
            body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, {"content-type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode(), {"content-type": "text/plain; charset=utf-8"})

    def payload(self) -> Any:
        return json.loads(self.body)


class HttpError(Exception):
    """A request the API refuses, with the status and message to answer."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Route:
    handler: Handler
    auth: str = "eval"  # open | eval | admin
    errors: str = "json"  # json | evaluator | text: how this route's callers expect failures


def parse_json_param(text: str, name: str) -> Any:
    try:
        return parse_json(text)
    except (ValueError, RecursionError) as error:
        raise HttpError(400, f"{name} is not valid JSON: {error}") from error


def request_key(raw: Any, bucketing: Any) -> tuple[str, str]:
    if raw is None:
        raise HttpError(400, "key is required")
    try:
        return parse_key(raw, bucketing)
    except InputError as error:
        raise HttpError(400, error.message) from error


def request_attributes(raw: Any) -> dict[str, Any] | None:
    try:
        return parse_attributes(raw)
    except InputError as error:
        raise HttpError(400, error.message) from error


def _bearer(header: str) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case)."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


class App:
    """Routes requests to the evaluator behind a ``PlanCache``."""

    def __init__(
        self,
        cache: PlanCache,
        *,
        settings: Settings | None = None,
        outbox: Outbox | None = None,
        sync: Callable[[], Awaitable[SyncReport]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from worker import compat, ofrep

        self.cache = cache
        self.settings = settings or Settings()
        self.outbox = outbox
        self.sync = sync
        self.clock = clock
        self.routes: dict[str, dict[str, Route]] = {
            "/treatment": {"GET": Route(self.treatment)},
            "/treatments": {"POST": Route(self.treatments)},
            "/track": {"POST": Route(self.track_route)},
            "/health": {"GET": Route(self.health, auth="open")},
            "/admin/sync": {"POST": Route(self.admin_sync, auth="admin")},
        }
        self.prefixes: list[tuple[str, dict[str, Route]]] = []
        compat.register(self)
        ofrep.register(self)

    # -- dispatch ----------------------------------------------------------

    def _route(self, path: str) -> dict[str, Route] | None:
        methods = self.routes.get(path)
        if methods is not None:
            return methods
        for prefix, prefixed in self.prefixes:
            if path.startswith(prefix) and len(path) > len(prefix):
                return prefixed
        return None

    async def handle(self, request: Request, background: Background | None = None) -> Response:
        """Answer one request; never raises. ``background`` is the runtime's waitUntil."""
        origin = request.headers.get("origin")
        if request.method == "OPTIONS" and origin is not None:
            return self._preflight(request, origin)
        methods = self._route(request.path)
        method = "GET" if request.method == "HEAD" else request.method  # adapters drop the body
        route = methods.get(method) if methods else None
        try:
            if methods is None:
                raise HttpError(404, f"no route {request.path}")
            if route is None:
                allowed = ", ".join(sorted(methods))
                raise HttpError(
                    405,
                    f"{request.method} is not allowed on {request.path}; use {allowed}",
                    {"allow": allowed},
                )
            self._authorize(request, route)
            if len(request.body) > MAX_BODY:
                raise HttpError(413, f"the request body is over {MAX_BODY} bytes")
            response = await route.handler(request)
        except HttpError as error:
            response = self._error(route, error)
        except Exception:  # a bug must still answer, and be logged with its traceback
            logger.exception("%s %s failed", request.method, request.path)
            response = self._error(route, HttpError(500, "internal error; see the Worker's logs"))
        if self.outbox is not None:
            self.outbox.flush_later(background)
        if origin is not None:
            response.headers.update(self._cors(origin))
        elif self.settings.cors_origins:
            response.headers["vary"] = (
                "Origin"  # caches must not serve one origin's answer to another
            )
        return response

    def _error(self, route: Route | None, error: HttpError) -> Response:
        style = route.errors if route else "json"
        if style == "text":
            response = Response.text(error.status, error.message)
        elif style == "evaluator":
            message = "Unauthorized" if error.status == 401 else error.message
            payload: Any = message if error.status == 401 else [message]
            response = Response.json(error.status, {"error": payload})
        else:
            response = Response.json(error.status, {"error": error.message})
        response.headers.update(error.headers)
        return response

    def _authorize(self, request: Request, route: Route) -> None:
        if route.auth == "open":
            return
        if route.auth == "admin":
            token = self.settings.admin_token
            if not token:
                raise HttpError(
                    403,
                    "admin routes are disabled: no admin token is configured "
                    "(FLAGEDGE_ADMIN_TOKEN / Pulumi secret adminToken)",
                )
            given = request.headers.get("authorization", "")
            if not _same(_bearer(given) or "", token):
                raise HttpError(
                    401, "send Authorization: Bearer <admin token>", {"www-authenticate": "Bearer"}
                )
            return
        token = self.settings.eval_token
        if not token:
            return
        given = request.headers.get("authorization", "")
        candidates = [
            given,
            _bearer(given) or "",
            request.headers.get("x-api-key", ""),
        ]
        if not any(c and _same(c, token) for c in candidates):
            raise HttpError(
                401, "send Authorization: Bearer <evaluation token>", {"www-authenticate": "Bearer"}
            )

    def _allowed(self, origin: str) -> bool:
        origins = self.settings.cors_origins
        return "*" in origins or origin in origins

    def _cors(self, origin: str) -> dict[str, str]:
        if not self._allowed(origin):
            return {"vary": "Origin"}
        return {
            "access-control-allow-origin": "*" if "*" in self.settings.cors_origins else origin,
            "access-control-expose-headers": "ETag, Retry-After",
            "vary": "Origin",
        }

    def _preflight(self, request: Request, origin: str) -> Response:
        if not self._allowed(origin):
            return Response.json(403, {"error": f"origin {origin} is not allowed (corsOrigins)"})
        methods = self._route(request.path)
        if methods is None:
            return Response.json(404, {"error": f"no route {request.path}"})
        headers = self._cors(origin)
        headers.update(
            {
                "access-control-allow-methods": ", ".join(sorted({*methods, "OPTIONS"})),
                "access-control-allow-headers": request.headers.get(
                    "access-control-request-headers",
                    "Content-Type, Authorization, X-API-Key, If-None-Match",
                ),
                "access-control-max-age": "86400",
            }
        )
        return Response(204, b"", headers)

    # -- the operations behind routes and RPC ---------------------------------

    async def results(
        self,
        key: tuple[str, str],
        attributes: dict[str, Any] | None,
        *,
        flags: Iterable[str] = (),
        sets: Iterable[str] = (),
        all_flags: bool = False,
        traffic_type: str | None = None,
        explicit_bucketing: bool = False,
        impressions_disabled: bool = False,
    ) -> dict[str, Result]:
        """Evaluate flags (named, in sets, or all) and record their impressions."""
        evaluator = await self.cache.get()
        plan = evaluator.plan
        names = list(dict.fromkeys(flags))
        if sets:
            names.extend(n for n in evaluator.flags_in_sets(sets) if n not in names)
        if all_flags and plan is not None:
            names = sorted(
                name
                for name, flag in plan.flags.items()
                if traffic_type is None or (flag.traffic_type or "").lower() == traffic_type
            )
        large = plan.large_segments_for(names) if plan is not None else frozenset()
        members = await self.cache.memberships(key[0], large)
        results = evaluator.evaluate_many(
            key[0], names, attributes, bucketing_key=key[1], large=members
        )
        if self.outbox is not None:
            recorded = results
            if impressions_disabled:  # counted and keyed, as Split does, but no impression
                recorded = {n: r._replace(impressions_disabled=True) for n, r in results.items()}
            self.outbox.record(key[0], key[1] if explicit_bucketing else None, recorded)
        return results

    def queue_event(
        self, key: Any, traffic_type: Any, event_type: Any, value: Any, properties: Any
    ) -> dict[str, Any]:
        try:
            event = parse_event(key, traffic_type, event_type, value, properties)
        except InputError as error:
            raise HttpError(400, error.message) from error
        if self.outbox is not None:
            self.outbox.track(event)
        return event

    async def health_payload(self) -> tuple[bool, dict[str, Any]]:
        status = await self.cache.reader.status()
        ready = int(status.get("version") or 0) > 0
        counts = status.get("counts") or {}
        sync = status.get("sync") or {}
        return ready, {
            "status": "ok" if ready else "not ready",
            "planVersion": status.get("version", 0),
            "changeNumbers": {
                "flags": status.get("ff_till"),
                "ruleBasedSegments": status.get("rbs_till"),
            },
            "counts": {
                "flags": counts.get("flags", 0),
                "ruleBasedSegments": counts.get("rule_based_segments", 0),
                "segments": counts.get("segments", 0),
                "segmentKeys": counts.get("keys", 0),
            },
            "publishedAt": status.get("published_at"),
            "lastSync": {
                "at": sync.get("last_attempt"),
                "outcome": sync.get("outcome"),
                "error": sync.get("error"),
                "lastSuccess": sync.get("last_success"),
                "durationMs": sync.get("duration_ms"),
                "requests": sync.get("requests"),
                "pending": sync.get("pending") or [],
            },
        }

    # -- flagedge's own routes -------------------------------------------------

    async def treatment(self, request: Request) -> Response:
        flag = request.single("flag")
        if flag is None:
            raise HttpError(400, "flag is required")
        try:
            name = parse_flag_name(flag)
        except InputError as error:
            raise HttpError(400, f"flag: {error.message}") from error
        bucketing = request.single("bucketingKey")
        key = request_key(request.single("key"), bucketing)
        raw_attributes = request.single("attributes")
        attributes = (
            request_attributes(parse_json_param(raw_attributes, "attributes"))
            if raw_attributes is not None
            else None
        )
        results = await self.results(
            key, attributes, flags=[name], explicit_bucketing=bucketing is not None
        )
        return Response.json(200, results[name].as_dict())

    async def treatments(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "the request body must be a JSON object")
        key = request_key(body.get("key"), body.get("bucketingKey"))
        attributes = request_attributes(body.get("attributes"))
        flags, sets = body.get("flags"), body.get("flagSets")
        for field_name, value in (("flags", flags), ("flagSets", sets)):
            if value is not None and not isinstance(value, list):
                raise HttpError(400, f"{field_name} must be a list of names")
        if not flags and not sets:
            raise HttpError(400, "flags must be a non-empty list of flag names (or give flagSets)")
        if len(flags or []) + len(sets or []) > MAX_NAMES:
            raise HttpError(400, f"at most {MAX_NAMES} flags and flag sets in one call")
        names = []
        for index, raw in enumerate(flags or []):
            try:
                names.append(parse_flag_name(raw))
            except InputError as error:
                raise HttpError(400, f"flags[{index}]: {error.message}") from error
        for index, raw in enumerate(sets or []):
            if not isinstance(raw, str) or not raw.strip():
                raise HttpError(400, f"flagSets[{index}] must be a non-empty string")
        results = await self.results(
            key, attributes, flags=names, sets=sets or [], explicit_bucketing="bucketingKey" in body
        )
        return Response.json(200, {name: result.as_dict() for name, result in results.items()})

    async def track_route(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "the request body must be a JSON object")
        if body.get("key") is None:
            raise HttpError(400, "key is required")
        self.queue_event(
            body.get("key"),
            body.get("trafficType"),
            body.get("eventType"),
            body.get("value"),
            body.get("properties"),
        )
        return Response.json(202, {"queued": True})

    async def health(self, request: Request) -> Response:
        ready, payload = await self.health_payload()
        if ready:
            return Response.json(200, payload)
        return Response.json(503, payload, {"retry-after": "60"})  # the cron runs every minute

    async def admin_sync(self, request: Request) -> Response:
        if self.sync is None:
            raise HttpError(501, "this runtime has no synchronizer")
        report = await self.sync()
        if report.outcome == "busy":
            raise HttpError(409, report.error or "another sync is running", {"retry-after": "5"})
        status = report.status()
        payload = {
            "outcome": report.outcome,
            "error": report.error,
            "line": report.line(),
            "published": report.published,
            "planVersion": report.version,
            "changeNumbers": {"flags": report.ff_till, "ruleBasedSegments": report.rbs_till},
            "counts": status["counts"],
            "requests": report.requests,
            "durationMs": report.duration_ms,
            "pending": report.pending,
            "warnings": report.warnings,
        }
        return Response.json(502 if report.outcome == "failed" else 200, payload)

    # -- RPC: the same operations for another Worker, over a service binding ----------

    async def rpc(self, operation: str, background: Background | None, **arguments: Any) -> Any:
        """Run an RPC method; bad input raises ValueError with the 400's message."""
        try:
            return await self._rpc(operation, **arguments)
        except HttpError as error:
            raise ValueError(error.message) from None
        finally:
            if self.outbox is not None:
                self.outbox.flush_later(background)

    async def _rpc(self, operation: str, **a: Any) -> Any:
        if operation == "health":
            return (await self.health_payload())[1]
        if operation == "track":
            self.queue_event(
                a["key"], a["traffic_type"], a["event_type"], a.get("value"), a.get("properties")
            )
            return True
        key = request_key(a["key"], a.get("bucketing_key"))
        attributes = request_attributes(a.get("attributes"))
        explicit = a.get("bucketing_key") is not None
        if operation == "evaluate":
            try:
                name = parse_flag_name(a["flag"])
            except InputError as error:
                raise HttpError(400, f"flag: {error.message}") from error
            results = await self.results(key, attributes, flags=[name], explicit_bucketing=explicit)
            return results[name].as_dict()
        names: list[str] = []
        sets: list[str] = []
        if operation == "evaluate_many":
            if not isinstance(a["flags"], list) or not a["flags"]:
                raise HttpError(400, "flags must be a non-empty list of flag names")
            if len(a["flags"]) > MAX_NAMES:
                raise HttpError(400, f"at most {MAX_NAMES} flags in one call")
            for index, raw in enumerate(a["flags"]):
                try:
                    names.append(parse_flag_name(raw))
                except InputError as error:
                    raise HttpError(400, f"flags[{index}]: {error.message}") from error
        else:
            if not isinstance(a["flag_sets"], list) or not a["flag_sets"]:
                raise HttpError(400, "flag_sets must be a non-empty list of flag set names")
            sets = [str(s) for s in a["flag_sets"]]
        results = await self.results(
            key, attributes, flags=names, sets=sets, explicit_bucketing=explicit
        )
        return {name: result.as_dict() for name, result in results.items()}
