"""Routes compatible with what flagedge replaces, so existing callers need no change.

Split's split-evaluator (its client router, version 2.9.0): every
``/client/...`` evaluation route by GET and POST, ``GET /client/track``,
``GET /admin/healthcheck``. Same parameter names (``key``, ``bucketing-key``,
``split-name``, ``split-names``, ``flag-sets``, ``attributes`` as a JSON text,
``keys`` for get-all-treatments), same answers, same 400 body (a list of
messages, worded as split-evaluator words them) and the same raw
``Authorization`` token. On POST, as there, names stay in the query string and
``attributes`` come from the JSON body.

Split's Cloudflare Workers template: ``GET /get-treatment?key=&feature-flag=``
(also ``split=``), answering plain text ``Treatment: <t>`` and plain-text 400s;
the one route here that does not answer JSON.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from worker.api import HttpError, Request, Response, Route
from worker.inputs import (
    MAX_KEY_LENGTH,
    InputError,
    is_unicode,
    parse_flag_sets,
    parse_json,
    utf16_length,
)
from worker.matchers import _JS_SPACE, to_number

if TYPE_CHECKING:
    from worker.api import App

__all__ = ["register"]

_EVENT_TYPE = re.compile(r"^[a-zA-Z0-9][-_.:a-zA-Z0-9]{0,79}$")


def _one(request: Request, name: str) -> str | list[str] | None:
    values = request.query.get(name)
    if values is None:
        return None
    return values[0] if len(values) == 1 else values  # repeated: an array, as Express reads it


def _check_key(raw: Any, kind: str, errors: list[str]) -> str | None:
    if raw is None:
        errors.append(f"you passed a null or undefined {kind}, {kind} must be a non-empty string.")
        return None
    if not isinstance(raw, str):
        errors.append("you passed an invalid key, key must be a non-empty string.")
        return None
    text = raw.strip(_JS_SPACE)
    if not text:
        errors.append(f"you passed an empty string, {kind} must be a non-empty string.")
        return None
    if not is_unicode(text):
        errors.append("you passed an invalid key, key must be a non-empty string.")
        return None
    if utf16_length(text) > MAX_KEY_LENGTH:
        errors.append(f"{kind} too long, {kind} must be 250 characters or less.")
        return None
    return text


def _required_text(raw: Any, kind: str, errors: list[str], *, strip: bool = True) -> str | None:
    """A required text parameter, with split-evaluator's three messages for it."""
    must = f"{kind} must be a non-empty string."
    if raw is None:
        errors.append(f"you passed a null or undefined {kind}, {must}")
    elif not isinstance(raw, str):
        errors.append(f"you passed an invalid {kind}, {must}")
    elif not (raw.strip() if strip else raw):
        errors.append(f"you passed an empty {kind}, {must}")
    else:
        return raw
    return None


def _names(raw: Any, kind: str, errors: list[str], empty_message: str) -> list[str]:
    if raw is None:
        errors.append(f"you passed a null or undefined {kind}, {kind} must be a non-empty array.")
        return []
    parts = raw if isinstance(raw, list) else str(raw).split(",")
    names = list(dict.fromkeys(p.strip() for p in parts if isinstance(p, str) and p.strip()))
    if not names:
        errors.append(empty_message)
    return names


def _attributes(raw: Any, errors: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    value = raw
    if isinstance(raw, str):
        try:
            value = parse_json(raw)
        except (ValueError, RecursionError):
            value = None
    if not isinstance(value, dict):
        errors.append("attributes must be a plain object.")
        return None
    return value


def _impressions_disabled(request: Request, body: dict[str, Any]) -> bool:
    """split-evaluator's switch: the query's ``impressions-disabled``, or the POST body's."""
    if request.method == "POST" and "impressionsDisabled" in body:
        return str(body["impressionsDisabled"]).lower() == "true"
    return _one(request, "impressions-disabled") == "true"


class _Client:
    """split-evaluator's /client routes over the app's evaluation."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def _body(self, request: Request) -> dict[str, Any]:
        if request.method != "POST":
            return {}
        if not request.body:
            return {}
        try:
            body = parse_json(request.body)
        except (ValueError, RecursionError) as error:  # bad JSON, bad UTF-8, nested too deep
            raise _ParseFailed(str(error)) from error
        return body if isinstance(body, dict) else {}

    async def _common(self, request: Request) -> tuple[tuple[str, str], bool, Any, list[str], bool]:
        body = await self._body(request)
        errors: list[str] = []
        key = _check_key(_one(request, "key"), "key", errors)
        bucketing_raw = _one(request, "bucketing-key")
        bucketing = None
        if bucketing_raw is not None:
            bucketing = _check_key(bucketing_raw, "bucketing-key", errors)
        attributes_raw = (
            body.get("attributes") if request.method == "POST" else _one(request, "attributes")
        )
        disabled = _impressions_disabled(request, body)
        return (
            (key or "", bucketing or key or ""),
            bucketing is not None,
            attributes_raw,
            errors,
            disabled,
        )

    async def evaluate(self, request: Request, *, mode: str, config: bool) -> Response:
        try:
            key, explicit, attributes_raw, errors, disabled = await self._common(request)
        except _ParseFailed as failure:
            return failure.response(request)
        if mode == "one":
            name = _required_text(_one(request, "split-name"), "split-name", errors)
            names = [name.strip()] if name else []
        elif mode == "many":
            names = _names(
                _one(request, "split-names"),
                "split-names",
                errors,
                "split-names must be a non-empty array.",
            )
        else:
            sets = _names(
                _one(request, "flag-sets"),
                "flag-sets",
                errors,
                "you passed an empty flag-sets, flag-sets must be a non-empty array.",
            )
        attributes = _attributes(attributes_raw, errors)
        if errors:
            return Response.json(400, {"error": errors})

        app = self.app
        if mode == "sets":
            results = await app.results(
                key,
                attributes,
                sets=parse_flag_sets(sets),
                explicit_bucketing=explicit,
                impressions_disabled=disabled,
            )
        else:
            results = await app.results(
                key,
                attributes,
                flags=names,
                explicit_bucketing=explicit,
                impressions_disabled=disabled,
            )

        def shape(treatment: str, cfg: str | None) -> dict[str, Any]:
            return {"treatment": treatment, "config": cfg} if config else {"treatment": treatment}

        if mode == "one":
            result = results[names[0]]
            return Response.json(
                200, {"splitName": names[0], **shape(result.treatment, result.config)}
            )
        return Response.json(200, {n: shape(r.treatment, r.config) for n, r in results.items()})

    async def all_treatments(self, request: Request, *, config: bool) -> Response:
        try:
            body = await self._body(request)
        except _ParseFailed as failure:
            return failure.response(request)
        errors: list[str] = []
        disabled = _impressions_disabled(request, body)
        entries = self._keys(_one(request, "keys"), errors)
        attributes_raw = (
            body.get("attributes") if request.method == "POST" else _one(request, "attributes")
        )
        attributes = _attributes(attributes_raw, errors)
        if errors:
            return Response.json(400, {"error": errors})
        answer: dict[str, Any] = {}
        for matching, traffic_type, bucketing in entries:
            results = await self.app.results(
                (matching, bucketing or matching),
                attributes,
                all_flags=True,
                traffic_type=traffic_type,
                explicit_bucketing=bucketing is not None,
                impressions_disabled=disabled,
            )
            answer[traffic_type] = {
                name: (
                    {"treatment": r.treatment, "config": r.config}
                    if config
                    else {"treatment": r.treatment}
                )
                for name, r in results.items()
            }
        return Response.json(200, answer)

    @staticmethod
    def _keys(raw: Any, errors: list[str]) -> list[tuple[str, str, str | None]]:
        if raw is None:
            errors.append("you passed null or undefined keys, keys must be a non-empty array.")
            return []
        try:
            items = parse_json(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            items = None
        if not isinstance(items, list):
            errors.append("keys must be a valid format.")
            return []
        if not items:
            errors.append("there should be at least one matchingKey-trafficType element.")
            return []
        entries, seen = [], set()
        for item in items:
            sub: list[str] = []
            if not isinstance(item, dict):
                sub.append("bad")
                matching = traffic = None
                bucketing = None
            else:
                raw_key = item.get("matchingKey")
                if isinstance(raw_key, int | float) and not isinstance(raw_key, bool):
                    raw_key = str(raw_key)
                matching = _check_key(raw_key, "key", sub)
                traffic = item.get("trafficType")
                if not isinstance(traffic, str) or not traffic.strip():
                    sub.append("bad")
                bucketing = None
                if "bucketingKey" in item:
                    bucketing = _check_key(item["bucketingKey"], "bucketing-key", sub)
            if sub or matching is None or not isinstance(traffic, str):
                errors.append(
                    "keys is array but there are errors inside of it. keys must be an array with "
                    "at least one element that contain a valid matchingKey and trafficType. It "
                    "can also includes bucketingKey."
                )
                return []
            traffic = traffic.strip().lower()
            if traffic in seen:
                errors.append("at least one trafficType is duplicated in keys object.")
                return []
            seen.add(traffic)
            entries.append((matching, traffic, bucketing))
        return entries

    async def track(self, request: Request) -> Response:
        errors: list[str] = []
        key = _check_key(_one(request, "key"), "key", errors)
        traffic = _required_text(_one(request, "traffic-type"), "traffic-type", errors)
        event = _required_text(_one(request, "event-type"), "event-type", errors, strip=False)
        if event is not None and not _EVENT_TYPE.match(event):
            errors.append(
                f'you passed "{event}", event-type must adhere to the regular expression '
                "/^[a-zA-Z0-9][-_.:a-zA-Z0-9]{0,79}$/g. This means an event_type must be "
                "alphanumeric, cannot be more than 80 characters long, and can only include a "
                "dash, underscore, period, or colon as separators of alphanumeric characters."
            )
        raw_value = _one(request, "value")
        value = None
        if raw_value is not None:
            number = (
                to_number(raw_value) if isinstance(raw_value, str) and raw_value.strip() else None
            )
            if number is None:
                errors.append("value must be null or number.")
            else:
                value = number
        properties = None
        raw_properties = _one(request, "properties")
        if isinstance(raw_properties, str):
            try:
                parsed = parse_json(raw_properties)
            except (ValueError, RecursionError):
                parsed = None
            properties = parsed if isinstance(parsed, dict) else None  # ignored, as there
        if errors:
            return Response.json(400, {"error": errors})
        try:
            self.app.queue_event(key, traffic, event, value, properties)
        except HttpError as error:
            return Response.json(400, {"error": [error.message]})
        return Response.text(200, "Successfully queued event")

    async def healthcheck(self, request: Request) -> Response:
        ready, _ = await self.app.health_payload()
        if ready:
            return Response.text(200, "Split Evaluator working as expected.")
        return Response.text(500, "Split evaluator engine is not evaluating traffic properly.")

    async def ping(self, request: Request) -> Response:
        return Response.text(200, "pong")


class _ParseFailed(Exception):
    def response(self, request: Request) -> Response:
        return Response.json(
            400,
            {
                "error": {
                    "expose": True,
                    "statusCode": 400,
                    "status": 400,
                    "body": request.body.decode("utf-8", "replace"),
                    "type": "entity.parse.failed",
                }
            },
        )


async def _template_treatment(app: App, request: Request) -> Response:
    key = request.param("key")
    flag = request.param("feature-flag") or request.param("split")
    if not key:
        return Response.text(400, "No key provided")
    if not flag:
        return Response.text(400, "No feature flag name provided")
    try:
        from worker.inputs import parse_key

        pair = parse_key(key)
    except InputError:
        return Response.text(200, "Treatment: control")
    results = await app.results(pair, None, flags=[flag.strip() or flag])
    return Response.text(200, f"Treatment: {next(iter(results.values())).treatment}")


def register(app: App) -> None:
    client = _Client(app)

    def both(handler: Any) -> dict[str, Route]:
        route = Route(handler, errors="evaluator")
        return {"GET": route, "POST": route}

    def evaluation(mode: str, config: bool) -> dict[str, Route]:
        async def handler(request: Request) -> Response:
            return await client.evaluate(request, mode=mode, config=config)

        return both(handler)

    def everything(config: bool) -> dict[str, Route]:
        async def handler(request: Request) -> Response:
            return await client.all_treatments(request, config=config)

        return both(handler)

    app.routes.update(
        {
            "/client/get-treatment": evaluation("one", False),
            "/client/get-treatment-with-config": evaluation("one", True),
            "/client/get-treatments": evaluation("many", False),
            "/client/get-treatments-with-config": evaluation("many", True),
            "/client/get-treatments-by-sets": evaluation("sets", False),
            "/client/get-treatments-with-config-by-sets": evaluation("sets", True),
            "/client/get-all-treatments": everything(False),
            "/client/get-all-treatments-with-config": everything(True),
            "/client/track": {"GET": Route(client.track, errors="evaluator")},
            "/admin/healthcheck": {"GET": Route(client.healthcheck, errors="evaluator")},
            "/admin/ping": {"GET": Route(client.ping, errors="evaluator")},
        }
    )

    async def template(request: Request) -> Response:
        return await _template_treatment(app, request)

    text_route = Route(template, errors="text")
    app.routes["/get-treatment"] = {"GET": text_route, "POST": text_route}
