"""Split's matchers, compiled once per plan into small closures.

A compiled matcher is ``match(key, attributes, evaluation) -> bool``, where
``key`` is the matching key and ``evaluation`` gives access to the rest of
the plan (dependencies, rule-based segments, large segments).

Input semantics follow Split's JavaScript SDK, which is this project's
reference where the official SDKs disagree:

* The input is ``attributes[attribute]`` when the key selector names a
  (non-empty) attribute, else the matching key.
* The input is converted by the matcher's data type as JavaScript does
  (``to_number``, ``to_string``, ``to_set`` below); an input that cannot be
  converted makes the matcher false, and *then* ``negate`` flips the result,
  so a negated matcher on a missing attribute is true.
* Numeric matchers never match the key itself (to JavaScript the key is not a
  number); DATETIME inputs are epoch milliseconds; EQUAL_TO compares UTC days,
  the other DATETIME comparisons minutes, truncating both sides.
* Exception, as the reference chooses: EQUAL_TO_BOOLEAN reads the key itself
  as "true"/"false" in any case, as Java and Python do.
* A rule value that cannot be used (a regex that does not compile, an
  invalid semver) makes the matcher false for every input, as in JavaScript.

Regular expressions are JavaScript's: ``$`` is the end of the input (never
before a final newline) and ``\\d``/``\\w`` are ASCII-only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from worker.semver import Semver, parse_semver
from worker.splitdata import DataError

if TYPE_CHECKING:
    from worker.evaluator import Evaluation

__all__ = [
    "SegmentResolver",
    "Unsupported",
    "compile_matcher",
    "to_number",
    "to_string",
]

Attributes = Mapping[str, Any] | None
Match = Callable[[str, Attributes, "Evaluation"], bool]
SegmentCheck = Callable[[str, "Evaluation"], bool]
SegmentResolver = Callable[[str], SegmentCheck]


class Unsupported(Exception):
    """A matcher type this evaluator does not know."""


# -- JavaScript's conversions -------------------------------------------------

_JS_SPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_DECIMAL = re.compile(
    r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.ASCII
)
_JS_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)", re.ASCII)
_MAX_SAFE = 2**53


def _string_to_number(text: str) -> float | None:
    text = text.strip(_JS_SPACE)
    if not text:
        return 0.0
    if _JS_DECIMAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    if _JS_RADIX.fullmatch(text):
        try:
            return float(int(text, 0))
        except (OverflowError, ValueError):  # past float range (or int's digit limit)
            return math.inf
    return None


def _as_float(value: int | float) -> float:
    """A JSON number as JavaScript holds it: an integer past float range is Infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def to_number(value: Any) -> float | None:
    """JavaScript's ``Number(value)``; None where it gives NaN."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = _as_float(value)
        return None if math.isnan(number) else number
    if value is None:
        return 0.0
    if isinstance(value, str):
        return _string_to_number(value)
    if isinstance(value, list):
        try:
            return _string_to_number(_array_to_string(value))
        except ValueError:
            return None
    return None


def _number_to_string(value: float) -> str:
    """JavaScript's ``String(number)``: shortest round-trip digits, JS's layout."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest digits that round-trip, as JavaScript does.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # value = 0.<digits> * 10**point
    if len(digits) <= point <= 21:
        return sign + digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    power = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


_MAX_NESTING = 32  # deeper arrays read as no input rather than recursing further


def _js_string(value: Any, depth: int = 0) -> str:
    """JavaScript's ``String(value)`` for JSON values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < _MAX_SAFE else _number_to_string(_as_float(value))
    if isinstance(value, float):
        return _number_to_string(value)
    if value is None:
        return "null"
    if isinstance(value, list):
        return _array_to_string(value, depth + 1)
    return "[object Object]"


def _array_to_string(items: list[Any], depth: int = 0) -> str:
    if depth > _MAX_NESTING:
        raise ValueError("an array nested too deep to read")
    return ",".join("" if item is None else _js_string(item, depth) for item in items)


def to_string(value: Any) -> str | None:
    """The string a STRING-typed matcher sees; None where JavaScript gives up."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _js_string(value)
    if isinstance(value, list):
        return ",".join(item if isinstance(item, str) else "" for item in value) or None
    return None


def _to_set(value: Any) -> frozenset[str] | None:
    if not isinstance(value, list) or not value:
        return None
    try:
        return frozenset(_js_string(item) for item in value)
    except ValueError:
        return None


def _to_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


_DAY_MS = 86_400_000
_MINUTE_MS = 60_000
_MAX_DATE_MS = 8.64e15


def _truncate(step: int) -> Callable[[float], float | None]:
    def truncate(ms: float) -> float | None:
        if abs(ms) > _MAX_DATE_MS:
            return None
        whole = math.trunc(ms)
        return float(whole - whole % step)

    return truncate


_TO_DAY = _truncate(_DAY_MS)
_TO_MINUTE = _truncate(_MINUTE_MS)


def _js_regex(pattern: str) -> re.Pattern[str] | None:
    """Compile a JavaScript regex (no flags) with Python's ``re``; None if invalid."""
    out = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            ch = r"\Z"
        elif pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
            ch = "(?P<"
            i += 2
        out.append(ch)
        i += 1
    try:
        return re.compile("".join(out), re.ASCII)
    except (re.error, OverflowError, RecursionError):
        return None


# -- compilation ------------------------------------------------------------


def _data(raw: Mapping[str, Any], field: str) -> Mapping[str, Any] | None:
    data = raw.get(field)
    if data is None:
        return None
    if not isinstance(data, dict):
        raise DataError(f"{field} must be an object")
    return data


def _strings(data: Mapping[str, Any] | None, field: str, where: str) -> list[str] | None:
    if data is None:
        return None
    items = data.get(field)
    if items is None:
        return None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise DataError(f"{where}.{field} must be a list of strings")
    return items


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{where} must be a number")
    return _as_float(value)


_NUMERIC = {"EQUAL_TO", "GREATER_THAN_OR_EQUAL_TO", "LESS_THAN_OR_EQUAL_TO", "BETWEEN"}
_SETS = {"EQUAL_TO_SET", "CONTAINS_ANY_OF_SET", "CONTAINS_ALL_OF_SET", "PART_OF_SET"}
_SEMVER = {
    "EQUAL_TO_SEMVER",
    "GREATER_THAN_OR_EQUAL_TO_SEMVER",
    "LESS_THAN_OR_EQUAL_TO_SEMVER",
    "BETWEEN_SEMVER",
    "IN_LIST_SEMVER",
}
KNOWN_TYPES = frozenset(
    {
        "ALL_KEYS",
        "IN_SEGMENT",
        "WHITELIST",
        "STARTS_WITH",
        "ENDS_WITH",
        "CONTAINS_STRING",
        "MATCHES_STRING",
        "EQUAL_TO_BOOLEAN",
        "IN_SPLIT_TREATMENT",
        "IN_RULE_BASED_SEGMENT",
        "IN_LARGE_SEGMENT",
    }
    | _NUMERIC
    | _SETS
    | _SEMVER
)


def _never(key: str, attributes: Attributes, evaluation: Evaluation) -> bool:
    return False


def compile_matcher(raw: Any, segments: SegmentResolver) -> tuple[Match, bool]:
    """Compile one matcher; returns ``(match, always_true)``.

    ``always_true`` lets a condition drop a plain ALL_KEYS matcher on the key.
    Raises ``Unsupported`` for an unknown type and ``DataError`` for a known
    type whose data is wrongly typed.
    """
    if not isinstance(raw, dict):
        raise DataError("a matcher must be an object")
    kind = raw.get("matcherType")
    if not isinstance(kind, str):
        raise DataError("matcherType must be a string")
    if kind not in KNOWN_TYPES:
        raise Unsupported(kind)
    negate = raw.get("negate") or False
    if not isinstance(negate, bool):
        raise DataError("negate must be a boolean")
    selector = raw.get("keySelector")
    if selector is not None and not isinstance(selector, dict):
        raise DataError("keySelector must be an object or null")
    attribute = selector.get("attribute") if selector else None
    if attribute is not None and not isinstance(attribute, str):
        raise DataError("keySelector.attribute must be a string or null")
    attribute = attribute or None
    if kind in ("IN_SPLIT_TREATMENT", "IN_RULE_BASED_SEGMENT"):
        attribute = None  # these evaluate the key with all attributes, whatever the selector

    if kind == "ALL_KEYS" and attribute is None:
        return (_constant(not negate), not negate)

    test, convert, on_key = _build(kind, raw, segments)
    return (_wrap(test, convert, on_key, attribute, negate), False)


def _constant(value: bool) -> Match:
    """A matcher whose result is known without looking at the input."""
    if value:
        return lambda key, attributes, evaluation: True
    return _never


def _wrap(
    test: Callable[[Any, str, Attributes, Evaluation], bool],
    convert: Callable[[Any], Any],
    on_key: Callable[[str], Any] | None,
    attribute: str | None,
    negate: bool,
) -> Match:
    if attribute is None:
        if on_key is None:  # this data type never matches the key: false, then negate
            return _constant(negate)

        def match_key(key: str, attributes: Attributes, evaluation: Evaluation) -> bool:
            value = on_key(key)
            if value is None:
                return negate
            return test(value, key, attributes, evaluation) is not negate

        return match_key

    def match_attribute(key: str, attributes: Attributes, evaluation: Evaluation) -> bool:
        if attributes is None or attribute not in attributes:
            return negate
        value = convert(attributes[attribute])
        if value is None:
            return negate
        return test(value, key, attributes, evaluation) is not negate

    return match_attribute


def _identity(value: Any) -> Any:
    return value


def _build(
    kind: str, raw: Mapping[str, Any], segments: SegmentResolver
) -> tuple[
    Callable[[Any, str, Attributes, Evaluation], bool],
    Callable[[Any], Any],
    Callable[[str], Any] | None,
]:
    """(test, convert attribute, convert key or None) for one matcher type."""
    where = kind

    if kind == "ALL_KEYS":
        return (lambda v, k, a, e: True), to_string, _identity

    if kind == "IN_SEGMENT":
        data = _data(raw, "userDefinedSegmentMatcherData")
        name = data.get("segmentName") if data else None
        if not isinstance(name, str):
            raise DataError("IN_SEGMENT needs userDefinedSegmentMatcherData.segmentName")
        member = segments(name)
        return (lambda v, k, a, e: member(v, e)), to_string, _identity

    if kind == "IN_LARGE_SEGMENT":
        # Client-side SDKs only; server-side evaluators never match it.
        return (lambda v, k, a, e: False), to_string, _identity

    if kind in ("WHITELIST", "STARTS_WITH", "ENDS_WITH", "CONTAINS_STRING"):
        items = _strings(_data(raw, "whitelistMatcherData"), "whitelist", where)
        if kind == "WHITELIST":
            allowed = frozenset(items or ())
            return (lambda v, k, a, e: v in allowed), to_string, _identity
        if items is None:  # JavaScript throws on a null list: no match
            return (lambda v, k, a, e: False), to_string, _identity
        words = tuple(items)
        if kind == "STARTS_WITH":
            return (lambda v, k, a, e: v.startswith(words)), to_string, _identity
        if kind == "ENDS_WITH":
            return (lambda v, k, a, e: v.endswith(words)), to_string, _identity
        return (lambda v, k, a, e: any(w in v for w in words)), to_string, _identity

    if kind == "MATCHES_STRING":
        pattern = raw.get("stringMatcherData")
        if pattern is not None and not isinstance(pattern, str):
            raise DataError("MATCHES_STRING needs stringMatcherData as a string")
        compiled = _js_regex(pattern) if pattern is not None else None
        if compiled is None:
            return (lambda v, k, a, e: False), to_string, _identity
        search = compiled.search
        return (lambda v, k, a, e: search(v) is not None), to_string, _identity

    if kind == "EQUAL_TO_BOOLEAN":
        expected = raw.get("booleanMatcherData")
        if expected is not None and not isinstance(expected, bool):
            raise DataError("EQUAL_TO_BOOLEAN needs booleanMatcherData as a boolean")
        return (lambda v, k, a, e: v is expected), _to_boolean, _to_boolean

    if kind in _NUMERIC:
        return _build_numeric(kind, raw)

    if kind in _SETS:
        items = _strings(_data(raw, "whitelistMatcherData"), "whitelist", where)
        wanted = frozenset(items or ())
        tests: dict[str, Callable[[Any, str, Attributes, Evaluation], bool]] = {
            "EQUAL_TO_SET": lambda v, k, a, e: v == wanted,
            "CONTAINS_ANY_OF_SET": lambda v, k, a, e: not v.isdisjoint(wanted),
            "CONTAINS_ALL_OF_SET": lambda v, k, a, e: v >= wanted,
            "PART_OF_SET": lambda v, k, a, e: v <= wanted,
        }
        return tests[kind], _to_set, None

    if kind in _SEMVER:
        return _build_semver(kind, raw)

    if kind == "IN_SPLIT_TREATMENT":
        data = _data(raw, "dependencyMatcherData")
        flag = data.get("split") if data else None
        treatments = data.get("treatments") if data else None
        if not isinstance(flag, str):
            raise DataError("IN_SPLIT_TREATMENT needs dependencyMatcherData.split")
        if treatments is not None and not isinstance(treatments, list):
            raise DataError("dependencyMatcherData.treatments must be a list")
        accepted = frozenset(t for t in treatments or () if isinstance(t, str))
        return (
            (lambda v, k, a, e: e.treatment_of(flag) in accepted),
            _identity,
            _identity,
        )

    if kind == "IN_RULE_BASED_SEGMENT":
        data = _data(raw, "userDefinedSegmentMatcherData")
        name = data.get("segmentName") if data else None
        if not isinstance(name, str):
            raise DataError("IN_RULE_BASED_SEGMENT needs userDefinedSegmentMatcherData.segmentName")
        return (lambda v, k, a, e: e.in_rule_based_segment(name)), _identity, _identity

    raise Unsupported(kind)  # pragma: no cover - KNOWN_TYPES and this list agree


def _build_numeric(
    kind: str, raw: Mapping[str, Any]
) -> tuple[Callable[[Any, str, Attributes, Evaluation], bool], Callable[[Any], Any], None]:
    if kind == "BETWEEN":
        data = _data(raw, "betweenMatcherData")
        low = _number(data.get("start") if data else None, "betweenMatcherData.start")
        high = _number(data.get("end") if data else None, "betweenMatcherData.end")
    else:
        data = _data(raw, "unaryNumericMatcherData")
        low = high = _number(data.get("value") if data else None, "unaryNumericMatcherData.value")
    data_type = data.get("dataType") if data else None
    if low is None or high is None:
        return (lambda v, k, a, e: False), to_number, None

    convert: Callable[[Any], Any] = to_number
    if data_type == "DATETIME":
        truncate = _TO_DAY if kind == "EQUAL_TO" else _TO_MINUTE
        low, high = truncate(low), truncate(high)
        if low is None or high is None:
            return (lambda v, k, a, e: False), to_number, None

        def convert(value: Any) -> float | None:
            number = to_number(value)
            return None if number is None else truncate(number)

    if kind == "EQUAL_TO":
        return (lambda v, k, a, e: v == low), convert, None
    if kind == "GREATER_THAN_OR_EQUAL_TO":
        return (lambda v, k, a, e: v >= low), convert, None
    if kind == "LESS_THAN_OR_EQUAL_TO":
        return (lambda v, k, a, e: v <= high), convert, None
    return (lambda v, k, a, e: low <= v <= high), convert, None


def _semver_input(value: Any) -> Semver | None:
    return parse_semver(value) if isinstance(value, str) else None


def _build_semver(
    kind: str, raw: Mapping[str, Any]
) -> tuple[
    Callable[[Any, str, Attributes, Evaluation], bool], Callable[[Any], Any], Callable[[str], Any]
]:
    never = (lambda v, k, a, e: False), _semver_input, _semver_input
    if kind == "IN_LIST_SEMVER":
        items = _strings(_data(raw, "whitelistMatcherData"), "whitelist", kind)
        versions = [parse_semver(item) for item in items or ()]
        if not versions or any(v is None for v in versions):
            return never
        listed = frozenset(versions)
        return (lambda v, k, a, e: v in listed), _semver_input, _semver_input
    if kind == "BETWEEN_SEMVER":
        data = _data(raw, "betweenStringMatcherData")
        low = parse_semver(data.get("start")) if data else None
        high = parse_semver(data.get("end")) if data else None
        if low is None or high is None:
            return never
        return (
            (lambda v, k, a, e: low.compare(v) <= 0 <= high.compare(v)),
            _semver_input,
            _semver_input,
        )
    target = parse_semver(raw.get("stringMatcherData"))
    if target is None:
        return never
    if kind == "EQUAL_TO_SEMVER":
        return (lambda v, k, a, e: v == target), _semver_input, _semver_input
    if kind == "GREATER_THAN_OR_EQUAL_TO_SEMVER":
        return (lambda v, k, a, e: v.compare(target) >= 0), _semver_input, _semver_input
    return (lambda v, k, a, e: v.compare(target) <= 0), _semver_input, _semver_input
