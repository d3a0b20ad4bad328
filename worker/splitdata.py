"""Split's JSON documents: the envelopes and what the definitions reference.

``parse_split_changes`` accepts a splitChanges answer in either shape Split
has used: spec 1.3 (``{"ff": {"d", "s", "t"}, "rbs": {...}}``, ``rbs``
optional) and specs 1.1/1.2 (``{"splits", "since", "till"}``, read as ``ff``
with no rule-based segments). ``parse_segment_changes`` checks a
segmentChanges answer. Both raise ``DataError`` naming the first thing wrong,
so a bad answer is rejected before anything is written.

The definitions themselves (flags, rule-based segments) are checked by
compiling them (``worker.plan``); this module only says which standard
segments a definition names, which is what the synchronizer must fetch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Changes",
    "DataError",
    "SegmentChanges",
    "expect_int",
    "iter_matchers",
    "parse_segment_changes",
    "parse_split_changes",
    "segment_refs",
]


class DataError(ValueError):
    """A Split document does not have the shape Split's API gives it."""


def expect_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DataError(f"{where} must be an integer, not {value!r}")
    return value


def _expect_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DataError(f"{where} must be a list, not {type(value).__name__}")
    return value


def _expect_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"{where} must be an object, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Changes:
    """One splitChanges answer, whatever its spec."""

    flags: list[dict[str, Any]]
    ff_since: int
    ff_till: int
    rbs: list[dict[str, Any]]
    rbs_since: int
    rbs_till: int

    @property
    def done(self) -> bool:
        """True when nothing more is pending past this page."""
        return self.ff_since == self.ff_till and self.rbs_since == self.rbs_till


def _definitions(items: Any, where: str) -> list[dict[str, Any]]:
    items = _expect_list(items, where)
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        _expect_dict(item, f"{where}[{index}]")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}[{index}].name must be a non-empty string")
        checked.append(item)
    return checked


def parse_split_changes(doc: Any) -> Changes:
    """Check a splitChanges answer (either shape) and return its parts."""
    doc = _expect_dict(doc, "splitChanges")
    if "ff" in doc:
        ff = _expect_dict(doc["ff"], "ff")
        rbs = _expect_dict(doc.get("rbs") or {"d": [], "s": -1, "t": -1}, "rbs")
        return Changes(
            flags=_definitions(ff.get("d", []), "ff.d"),
            ff_since=expect_int(ff.get("s"), "ff.s"),
            ff_till=expect_int(ff.get("t"), "ff.t"),
            rbs=_definitions(rbs.get("d", []), "rbs.d"),
            rbs_since=expect_int(rbs.get("s", -1), "rbs.s"),
            rbs_till=expect_int(rbs.get("t", -1), "rbs.t"),
        )
    if "splits" in doc:
        return Changes(
            flags=_definitions(doc["splits"], "splits"),
            ff_since=expect_int(doc.get("since"), "since"),
            ff_till=expect_int(doc.get("till"), "till"),
            rbs=[],
            rbs_since=-1,
            rbs_till=-1,
        )
    raise DataError("splitChanges has neither 'ff' (spec 1.3) nor 'splits' (spec 1.1)")


@dataclass(frozen=True)
class SegmentChanges:
    name: str
    added: list[str]
    removed: list[str]
    since: int
    till: int


def parse_segment_changes(doc: Any, name: str) -> SegmentChanges:
    """Check a segmentChanges answer for segment ``name``."""
    doc = _expect_dict(doc, f"segmentChanges/{name}")
    lists = {}
    for field in ("added", "removed"):
        keys = _expect_list(doc.get(field) or [], f"segmentChanges/{name}.{field}")
        if not all(isinstance(key, str) for key in keys):
            raise DataError(f"segmentChanges/{name}.{field} must hold only strings")
        lists[field] = keys
    return SegmentChanges(
        name=name,
        added=lists["added"],
        removed=lists["removed"],
        since=expect_int(doc.get("since"), f"segmentChanges/{name}.since"),
        till=expect_int(doc.get("till"), f"segmentChanges/{name}.till"),
    )


def iter_matchers(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every matcher of a flag's or rule-based segment's conditions."""
    for condition in definition.get("conditions") or ():
        if not isinstance(condition, dict):
            continue
        group = condition.get("matcherGroup")
        if not isinstance(group, dict):
            continue
        for matcher in group.get("matchers") or ():
            if isinstance(matcher, dict):
                yield matcher


def _data_name(matcher: dict[str, Any], field: str, key: str) -> str | None:
    data = matcher.get(field)
    if isinstance(data, dict) and isinstance(data.get(key), str):
        return str(data[key])
    return None


def segment_refs(definition: dict[str, Any]) -> list[str]:
    """Standard segments a flag or rule-based segment names, sorted.

    These are the ``IN_SEGMENT`` matchers of its conditions and, for a
    rule-based segment, the standard segments it excludes.
    """
    names = set()
    for matcher in iter_matchers(definition):
        if matcher.get("matcherType") == "IN_SEGMENT":
            name = _data_name(matcher, "userDefinedSegmentMatcherData", "segmentName")
            if name:
                names.add(name)
    excluded = definition.get("excluded")
    if isinstance(excluded, dict):
        for item in excluded.get("segments") or ():
            if (
                isinstance(item, dict)
                and item.get("type") == "standard"
                and isinstance(item.get("name"), str)
            ):
                names.add(item["name"])
    return sorted(names)
