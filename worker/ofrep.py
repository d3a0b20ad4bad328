"""The OpenFeature Remote Evaluation Protocol (OFREP 0.3.0), over Split's evaluator.

* ``POST /ofrep/v1/evaluate/flags/{key}`` with ``{"context": {"targetingKey", ...}}``
* ``POST /ofrep/v1/evaluate/flags``: every flag of the plan for the context,
  with a strong ``ETag``; ``If-None-Match`` with the current one answers 304
  and no body.

How a Split result maps to OFREP:

=====================  =====================================================
``targetingKey``       the key (matching and bucketing)
other context fields   attributes
``value``, ``variant`` the treatment (a string; Split treatments are strings)
``metadata``           ``config`` (the treatment's JSON config text, when it
                       has one), ``label``, ``changeNumber``
``reason``             ``DISABLED`` for a killed flag; ``DEFAULT`` when no
                       condition decided (default rule, not in split,
                       prerequisites not met, a fallback treatment);
                       ``TARGETING_MATCH`` when a condition did
``control``            an error: ``FLAG_NOT_FOUND`` (404) for a flag not in
                       the plan, else ``GENERAL`` with the label as details
=====================  =====================================================
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from worker.api import Request, Response, Route
from worker.inputs import InputError, parse_flag_name, parse_json, parse_key
from worker.results import CONTROL, Label, Result

if TYPE_CHECKING:
    from worker.api import App

__all__ = ["register", "success"]

SINGLE = "/ofrep/v1/evaluate/flags/"
BULK = "/ofrep/v1/evaluate/flags"
_DEFAULT_LABELS = {Label.DEFAULT_RULE, Label.NOT_IN_SPLIT, Label.PREREQUISITES_NOT_MET}


class _Refused(Exception):
    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(details)
        self.status, self.code, self.details = status, code, details


def _context(request: Request) -> tuple[tuple[str, str], dict[str, Any]]:
    if not request.body:
        raise _Refused(400, "PARSE_ERROR", 'the request body is empty; send {"context": {...}}')
    try:
        body = parse_json(request.body)
    except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nested too deep
        raise _Refused(
            400, "PARSE_ERROR", f"the request body is not valid JSON: {error}"
        ) from error
    if not isinstance(body, dict):
        raise _Refused(400, "PARSE_ERROR", "the request body must be a JSON object")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise _Refused(400, "INVALID_CONTEXT", "context must be a JSON object")
    if "targetingKey" not in context:
        raise _Refused(400, "TARGETING_KEY_MISSING", "context is missing required targetingKey")
    try:
        key = parse_key(context["targetingKey"])
    except InputError as error:
        raise _Refused(400, "INVALID_CONTEXT", f"targetingKey: {error.message}") from error
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    return key, attributes


def success(flag: str, result: Result) -> dict[str, Any]:
    label = result.label or ""
    if label == Label.KILLED:
        reason = "DISABLED"
    elif label in _DEFAULT_LABELS or label.startswith(Label.FALLBACK_PREFIX):
        reason = "DEFAULT"
    else:
        reason = "TARGETING_MATCH"
    metadata: dict[str, Any] = {"label": label}
    if result.config is not None:
        metadata["config"] = result.config
    if result.change_number is not None:
        metadata["changeNumber"] = result.change_number
    return {
        "key": flag,
        "value": result.treatment,
        "variant": result.treatment,
        "reason": reason,
        "metadata": metadata,
    }


def _failure(flag: str, result: Result) -> tuple[int, dict[str, Any]]:
    if result.label == Label.NOT_FOUND:
        return 404, {
            "key": flag,
            "errorCode": "FLAG_NOT_FOUND",
            "errorDetails": f"Flag '{flag}' was not found",
        }
    if result.label == Label.NOT_READY:
        return 500, {
            "key": flag,
            "errorCode": "GENERAL",
            "errorDetails": "no rollout plan has been synced yet",
        }
    return 500, {"key": flag, "errorCode": "GENERAL", "errorDetails": result.label or "control"}


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates


def register(app: App) -> None:
    async def single(request: Request) -> Response:
        flag = unquote(request.path[len(SINGLE) :])
        try:
            key, attributes = _context(request)
            try:
                flag = parse_flag_name(flag)
            except InputError as error:
                raise _Refused(400, "GENERAL", f"flag key: {error.message}") from error
        except _Refused as refused:
            return Response.json(
                refused.status,
                {"key": flag, "errorCode": refused.code, "errorDetails": refused.details},
            )
        result = (await app.results(key, attributes, flags=[flag]))[flag]
        if result.treatment == CONTROL:
            status, payload = _failure(flag, result)
            return Response.json(status, payload)
        return Response.json(200, success(flag, result))

    async def bulk(request: Request) -> Response:
        try:
            key, attributes = _context(request)
        except _Refused as refused:
            return Response.json(
                refused.status, {"errorCode": refused.code, "errorDetails": refused.details}
            )
        evaluator = await app.cache.get()
        if evaluator.plan is None:
            return Response.json(
                500, {"errorCode": "GENERAL", "errorDetails": "no rollout plan has been synced yet"}
            )
        results = await app.results(key, attributes, all_flags=True)
        flags = [
            _failure(name, result)[1] if result.treatment == CONTROL else success(name, result)
            for name, result in sorted(results.items())
        ]
        response = Response.json(200, {"flags": flags})
        etag = _etag(response.body)
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(304, b"", {"etag": etag})
        response.headers["etag"] = etag
        return response

    app.prefixes.append((SINGLE, {"POST": Route(single)}))
    app.routes[BULK] = {"POST": Route(bulk)}
