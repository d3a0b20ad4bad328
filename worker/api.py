"""The HTTP API, framework-free: a ``Request`` in, a ``Response`` out.

The Worker's entry point and ``flagedge dev`` both adapt their own request
types to these two classes, so every route is written and tested once. Every
answer is JSON and every error is ``{"error": "<message>"}``.

Routes:

* ``GET /treatment?key=K&flag=F[&bucketingKey=B][&attributes=<JSON object>]``
* ``POST /treatments`` with ``{"key", "bucketingKey"?, "attributes"?, "flags": [...]}``
* ``GET /health``: 200 while a plan is served, 503 before the first sync.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from worker.cache import PlanCache
from worker.inputs import InputError, parse_attributes, parse_flag_name, parse_key
from worker.results import Result

__all__ = ["App", "HttpError", "Request", "Response"]

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
        """From a request target such as ``/treatment?key=a&flag=b``."""
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

    def json(self) -> Any:
        if not self.body:
            raise HttpError(400, "the request body is empty; send a JSON object")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HttpError(400, f"the request body is not valid JSON: {error}") from error


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, body, {"content-type": "application/json", **(headers or {})})

    def payload(self) -> Any:
        return json.loads(self.body)


class HttpError(Exception):
    """A request the API refuses, with the status and message to answer."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _parse_json_param(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HttpError(400, f"{name} is not valid JSON: {error}") from error


def _attributes(raw: Any) -> dict[str, Any] | None:
    try:
        return parse_attributes(raw)
    except InputError as error:
        raise HttpError(400, error.message) from error


def _key(raw: Any, bucketing: Any) -> tuple[str, str]:
    if raw is None:
        raise HttpError(400, "key is required")
    try:
        return parse_key(raw, bucketing)
    except InputError as error:
        raise HttpError(400, error.message) from error


class App:
    """Routes requests to the evaluator behind a ``PlanCache``."""

    def __init__(self, cache: PlanCache) -> None:
        self.cache = cache
        self.routes: dict[str, dict[str, Handler]] = {
            "/treatment": {"GET": self.treatment},
            "/treatments": {"POST": self.treatments},
            "/health": {"GET": self.health},
        }

    async def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        try:
            methods = self.routes.get(request.path)
            if methods is None:
                raise HttpError(404, f"no route {request.path}")
            handler = methods.get(request.method)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                raise HttpError(
                    405,
                    f"{request.method} is not allowed on {request.path}; use {allowed}",
                    {"allow": allowed},
                )
            return await handler(request)
        except HttpError as error:
            return Response.json(error.status, {"error": error.message}, error.headers)

    async def evaluate(
        self,
        key: tuple[str, str],
        flags: list[str],
        attributes: dict[str, Any] | None,
    ) -> dict[str, Result]:
        """Evaluate ``flags`` with one store call at most for large segments."""
        evaluator = await self.cache.get()
        plan = evaluator.plan
        large = plan.large_segments_for(flags) if plan is not None else frozenset()
        members = await self.cache.memberships(key[0], large)
        return evaluator.evaluate_many(
            key[0], flags, attributes, bucketing_key=key[1], large=members
        )

    async def treatment(self, request: Request) -> Response:
        flag = request.param("flag")
        if flag is None:
            raise HttpError(400, "flag is required")
        try:
            name = parse_flag_name(flag)
        except InputError as error:
            raise HttpError(400, f"flag: {error.message}") from error
        key = _key(request.param("key"), request.param("bucketingKey"))
        raw_attributes = request.param("attributes")
        attributes = (
            _attributes(_parse_json_param(raw_attributes, "attributes"))
            if raw_attributes is not None
            else None
        )
        results = await self.evaluate(key, [name], attributes)
        return Response.json(200, results[name].as_dict())

    async def treatments(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "the request body must be a JSON object")
        key = _key(body.get("key"), body.get("bucketingKey"))
        attributes = _attributes(body.get("attributes"))
        flags = body.get("flags")
        if not isinstance(flags, list) or not flags:
            raise HttpError(400, "flags must be a non-empty list of flag names")
        names = []
        for index, raw in enumerate(flags):
            try:
                names.append(parse_flag_name(raw))
            except InputError as error:
                raise HttpError(400, f"flags[{index}]: {error.message}") from error
        results = await self.evaluate(key, names, attributes)
        return Response.json(200, {name: result.as_dict() for name, result in results.items()})

    async def health(self, request: Request) -> Response:
        status = await self.cache.reader.status()
        ready = int(status.get("version") or 0) > 0
        counts = status.get("counts") or {}
        sync = status.get("sync") or {}
        payload = {
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
        return Response.json(200 if ready else 503, payload)
