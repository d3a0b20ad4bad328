"""Caller input, checked as Split's SDKs check it.

Each ``parse_*`` returns the value to use or raises ``InputError`` carrying
the label the evaluation reports and a message a 400 can show.

* A key is a string, a finite number (read as JavaScript prints it), or a
  ``{"matchingKey", "bucketingKey"}`` object whose two parts follow the same
  rules. Strings are trimmed; 1 to 250 characters must remain.
* Attributes are a JSON object or absent.
* A flag name is a string, trimmed, not empty.
* Flag-set names are trimmed and lowercased; names Split would reject are
  dropped, as the SDKs drop them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from worker.matchers import _JS_SPACE, to_string
from worker.results import Label

__all__ = [
    "MAX_KEY_LENGTH",
    "InputError",
    "is_unicode",
    "parse_attributes",
    "parse_event",
    "parse_flag_name",
    "parse_flag_sets",
    "parse_json",
    "parse_key",
    "utf16_length",
]

MAX_KEY_LENGTH = 250
_FLAG_SET = re.compile(r"^[a-z0-9][_a-z0-9]{0,49}$")


class InputError(ValueError):
    def __init__(self, label: str, message: str) -> None:
        super().__init__(message)
        self.label = label
        self.message = message


def _key_part(raw: Any, what: str) -> str:
    if isinstance(raw, bool) or raw is None:
        raise InputError(Label.INVALID_KEY, f"{what} must be a string")
    if isinstance(raw, int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise InputError(Label.INVALID_KEY, f"{what} must be a finite number or a string")
        raw = to_string(raw)
    if not isinstance(raw, str):
        raise InputError(Label.INVALID_KEY, f"{what} must be a string")
    text = raw.strip(_JS_SPACE)
    if not text:
        raise InputError(Label.INVALID_KEY, f"{what} must not be empty")
    if not is_unicode(text):
        raise InputError(Label.INVALID_KEY, f"{what} holds a lone surrogate; send valid Unicode")
    length = utf16_length(text)  # Split counts JavaScript string length: UTF-16 units
    if length > MAX_KEY_LENGTH:
        raise InputError(
            Label.INVALID_KEY, f"{what} is {length} characters; at most {MAX_KEY_LENGTH} allowed"
        )
    return text


def is_unicode(text: str) -> bool:
    """False for text holding lone surrogates, which JSON allows and UTF-8 cannot carry."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ch > "\uffff")


def parse_key(raw: Any, bucketing_key: Any = None) -> tuple[str, str]:
    """``(matching key, bucketing key)``; the bucketing key defaults to the matching one."""
    if isinstance(raw, dict):
        if bucketing_key is not None:
            raise InputError(
                Label.INVALID_KEY,
                "give the bucketing key inside the key object or beside it, not both",
            )
        if "matchingKey" not in raw or "bucketingKey" not in raw:
            raise InputError(
                Label.INVALID_KEY, "a key object needs both matchingKey and bucketingKey"
            )
        return _key_part(raw["matchingKey"], "matchingKey"), _key_part(
            raw["bucketingKey"], "bucketingKey"
        )
    matching = _key_part(raw, "key")
    if bucketing_key is None:
        return matching, matching
    return matching, _key_part(bucketing_key, "bucketingKey")


def parse_attributes(raw: Any) -> dict[str, Any] | None:
    if raw is None or isinstance(raw, dict):
        return raw
    raise InputError(
        Label.INVALID_ATTRIBUTES, f"attributes must be a JSON object, not {type(raw).__name__}"
    )


def parse_flag_name(raw: Any) -> str:
    if not isinstance(raw, str):
        raise InputError(Label.INVALID_FLAG_NAME, "a flag name must be a string")
    name = raw.strip(_JS_SPACE)
    if not name:
        raise InputError(Label.INVALID_FLAG_NAME, "a flag name must not be empty")
    if not is_unicode(name):
        raise InputError(Label.INVALID_FLAG_NAME, "a flag name holds a lone surrogate")
    return name


def parse_flag_sets(raw: Iterable[Any]) -> list[str]:
    """Valid, lowercased, de-duplicated flag-set names in the order given."""
    names: dict[str, None] = {}
    for item in raw:
        if isinstance(item, str):
            name = item.strip(_JS_SPACE).lower()
            if _FLAG_SET.match(name):
                names[name] = None
    return list(names)


_EVENT_TYPE = re.compile(r"^[a-zA-Z0-9][-_.:a-zA-Z0-9]{0,79}$")
MAX_PROPERTIES_BYTES = 32_768


def parse_event(
    key: Any, traffic_type: Any, event_type: Any, value: Any = None, properties: Any = None
) -> dict[str, Any]:
    """An event as Split's SDKs validate ``track``; raises ``InputError`` naming the problem.

    Property values that are not strings, finite numbers, booleans or null are
    sent as null, as the SDKs do; the properties' estimated size (Split's
    formula: 1024 bytes plus twice each name and string, 8 per number, 4 per
    boolean) must stay within 32 KB.
    """
    matching, _ = parse_key(key)
    if not isinstance(traffic_type, str) or not traffic_type.strip():
        raise InputError("invalid event", "trafficType must be a non-empty string")
    if event_type is None:
        raise InputError("invalid event", "eventType is required")
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
        raise InputError(
            "invalid event",
            f"eventType {event_type!r} must match {_EVENT_TYPE.pattern}: letters, digits and "
            "'-', '_', '.', ':' as separators, at most 80 characters",
        )
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise InputError("invalid event", "value must be a finite number or null")
    clean: dict[str, Any] | None = None
    if properties is not None:
        if not isinstance(properties, dict):
            raise InputError("invalid event", "properties must be a JSON object or null")
        clean, size = {}, 1024
        for name, item in properties.items():
            ok = (
                isinstance(item, str | bool)
                or item is None
                or (isinstance(item, int | float) and math.isfinite(item))
            )
            clean[name] = item if ok else None
            size += 2 * len(str(name))
            if isinstance(clean[name], str):
                size += 2 * len(clean[name])
            elif isinstance(clean[name], bool):
                size += 4
            elif clean[name] is not None:
                size += 8
        if size > MAX_PROPERTIES_BYTES:
            raise InputError(
                "invalid event", f"properties are about {size} bytes; Split accepts up to 32 KB"
            )
    return {
        "key": matching,
        "trafficTypeName": traffic_type.strip().lower(),
        "eventTypeId": event_type,
        "value": value,
        "properties": clean,
    }


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for text from outside, refusing nesting past ``max_depth``.

    The depth is measured without recursion before parsing: in the Worker's
    Pyodide a deep document would exhaust the JavaScript stack (a fatal error
    for the isolate) before Python could raise RecursionError. NaN and
    Infinity, which JSON does not have, are refused too. Raises ValueError.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if text.count("[") + text.count("{") > max_depth:
        depth = 0
        for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub('""', text)):
            if bracket in "[{":
                depth += 1
                if depth > max_depth:
                    raise ValueError(f"JSON nested deeper than {max_depth} levels")
            else:
                depth -= 1
    return json.loads(text, parse_constant=_refuse_constant)
