"""The rollout plan, parsed once into the structures the evaluator walks.

``Plan`` is immutable: flags, rule-based segments, the segments small enough
to keep in the isolate (as frozensets), the names of the large ones (kept in
the store and asked for per request) and the change numbers. Every answer the
evaluator can give without hashing (killed, default rule, not in split, a
condition with one 100% partition) is built here once, so the hot path
returns prebuilt ``Result`` tuples.

``check_flag`` and ``check_rule_based_segment`` compile a definition to reject
one that is wrongly typed; the synchronizer calls them on every definition
before anything reaches the store.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from worker.hashing import bucket
from worker.matchers import Match, SegmentCheck, Unsupported, compile_matcher
from worker.results import CONTROL, Label, Result
from worker.splitdata import DataError, expect_int, iter_matchers

if TYPE_CHECKING:
    pass

__all__ = [
    "Condition",
    "Flag",
    "Plan",
    "RuleBasedSegment",
    "check_flag",
    "check_rule_based_segment",
]


class Condition:
    """One condition: matchers (AND), and the result for each bucket."""

    __slots__ = ("bounds", "fixed", "label", "matchers", "results", "rollout")

    def __init__(
        self,
        rollout: bool,
        matchers: tuple[Match, ...],
        label: str | None,
        bounds: tuple[float, ...],
        results: tuple[Result, ...],
        fixed: Result | None,
    ) -> None:
        self.rollout = rollout
        self.matchers = matchers
        self.label = label
        self.bounds = bounds
        self.results = results
        self.fixed = fixed

    def pick(self, bucket_: int) -> Result:
        return self.results[bisect_left(self.bounds, bucket_)]


@dataclass(frozen=True, eq=False, slots=True)
class Flag:
    name: str
    change_number: int | None
    seed: int
    legacy_hash: bool
    allocation: float | None  # None: everyone is in (100%)
    allocation_seed: int
    conditions: tuple[Condition, ...]
    prerequisites: tuple[tuple[str, frozenset[str]], ...]
    fixed: Result | None  # killed, archived or broken: the answer for everyone
    unsupported: Result | None
    default: Result
    not_in_split: Result
    prerequisites_not_met: Result
    sets: frozenset[str]
    traffic_type: str | None
    impressions_disabled: bool
    configurations: Mapping[str, str]
    treatments: tuple[str, ...]
    default_treatment: str
    segment_refs: frozenset[str]
    flag_refs: frozenset[str]
    rbs_refs: frozenset[str]

    def bucket(self, key: str, seed: int) -> int:
        return bucket(key, seed, self.legacy_hash)


@dataclass(frozen=True, eq=False, slots=True)
class RuleBasedSegment:
    name: str
    change_number: int | None
    excluded_keys: frozenset[str]
    excluded_segments: tuple[SegmentCheck, ...]
    excluded_rbs: tuple[str, ...]
    conditions: tuple[tuple[Match, ...], ...]
    matches_all: bool  # a condition with an unsupported matcher counts as a match
    segment_refs: frozenset[str]
    rbs_refs: frozenset[str]
    flag_refs: frozenset[str]


# -- compiling ---------------------------------------------------------------


def _no_segment(name: str) -> SegmentCheck:
    return lambda key, evaluation: False


def _optional(raw: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    """``raw[name]`` when it is of ``kind`` (bool is not an int here), else None if absent."""
    value = raw.get(name)
    if value is None:
        return None
    if type(value) is not kind and not (isinstance(value, kind) and kind is not int):
        raise DataError(f"{where}.{name} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _references(raw: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(standard segments, flags, rule-based segments) named by the matchers."""
    segments: set[str] = set()
    flags: set[str] = set()
    rbs: set[str] = set()
    for matcher in iter_matchers(dict(raw)):
        kind = matcher.get("matcherType")
        if kind == "IN_SPLIT_TREATMENT":
            data = matcher.get("dependencyMatcherData") or {}
            if isinstance(data, dict) and isinstance(data.get("split"), str):
                flags.add(data["split"])
        elif kind in ("IN_SEGMENT", "IN_RULE_BASED_SEGMENT"):
            data = matcher.get("userDefinedSegmentMatcherData") or {}
            if isinstance(data, dict) and isinstance(data.get("segmentName"), str):
                (segments if kind == "IN_SEGMENT" else rbs).add(data["segmentName"])
    return frozenset(segments), frozenset(flags), frozenset(rbs)


def _compile_matchers(
    raw_condition: Mapping[str, Any], segments: Callable[[str], SegmentCheck], where: str
) -> tuple[Match, ...]:
    """The condition's matchers; raises ``Unsupported`` as JavaScript would."""
    group = raw_condition.get("matcherGroup")
    if not isinstance(group, dict):
        raise DataError(f"{where}.matcherGroup must be an object")
    raw_matchers = group.get("matchers")
    if not isinstance(raw_matchers, list):
        raise DataError(f"{where}.matcherGroup.matchers must be a list")
    compiled = []
    unsupported: str | None = None
    for index, raw in enumerate(raw_matchers):
        try:
            match, always = compile_matcher(raw, segments)
        except Unsupported as error:
            unsupported = unsupported or str(error)
            continue
        except DataError as error:
            raise DataError(f"{where}.matchers[{index}]: {error}") from error
        if not always:
            compiled.append(match)
    if unsupported is not None or not raw_matchers:
        # One unknown matcher (or an empty list) discards the whole definition.
        raise Unsupported(unsupported or "no matchers")
    return tuple(compiled)


def _header(raw: Any, what: str) -> tuple[str, str, int | None]:
    """A definition's name, how errors name it, and its change number."""
    if not isinstance(raw, dict):
        raise DataError(f"a {what} must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise DataError(f"{what} name must be a non-empty string")
    where = f"{what} {name!r}"
    change_number = raw.get("changeNumber")
    if change_number is not None:
        change_number = expect_int(change_number, f"{where}.changeNumber")
    return name, where, change_number


def compile_flag(raw: Any, segments: Callable[[str], SegmentCheck] = _no_segment) -> Flag:
    """Compile one flag definition; raises ``DataError`` when it is wrongly typed."""
    name, where, change_number = _header(raw, "flag")
    default_treatment = raw.get("defaultTreatment")
    if not isinstance(default_treatment, str):
        raise DataError(f"{where}.defaultTreatment must be a string")
    seed_raw = raw.get("seed")
    seed = 0 if seed_raw is None else expect_int(seed_raw, f"{where}.seed")
    killed = _optional(raw, "killed", bool, where) or False
    status = _optional(raw, "status", str, where) or "ACTIVE"
    algo = raw.get("algo")
    allocation_raw = raw.get("trafficAllocation")
    if allocation_raw is not None and (
        isinstance(allocation_raw, bool) or not isinstance(allocation_raw, int | float)
    ):
        raise DataError(f"{where}.trafficAllocation must be a number")
    allocation: float | None = None
    if allocation_raw is not None and 0 <= allocation_raw < 100:
        allocation = float(allocation_raw)
    allocation_seed_raw = raw.get("trafficAllocationSeed")
    allocation_seed = (
        0
        if allocation_seed_raw is None
        else expect_int(allocation_seed_raw, f"{where}.trafficAllocationSeed")
    )
    configurations = _optional(raw, "configurations", dict, where) or {}
    if not all(isinstance(v, str) for v in configurations.values()):
        raise DataError(f"{where}.configurations must map treatments to JSON strings")
    sets = _optional(raw, "sets", list, where) or []
    if not all(isinstance(s, str) for s in sets):
        raise DataError(f"{where}.sets must be a list of strings")
    impressions_disabled = _optional(raw, "impressionsDisabled", bool, where) or False
    traffic_type = _optional(raw, "trafficTypeName", str, where)

    prerequisites = []
    for index, item in enumerate(_optional(raw, "prerequisites", list, where) or []):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("n"), str)
            or not isinstance(item.get("ts"), list)
        ):
            raise DataError(f"{where}.prerequisites[{index}] must be {{n: flag, ts: [treatments]}}")
        prerequisites.append((item["n"], frozenset(t for t in item["ts"] if isinstance(t, str))))

    def result(treatment: str, label: str | None) -> Result:
        config = configurations.get(treatment) or None
        return Result(treatment, label, config, change_number, impressions_disabled)

    default = result(default_treatment, Label.DEFAULT_RULE)
    conditions: list[Condition] = []
    treatments: list[str] = [default_treatment]
    unsupported: Result | None = None
    broken = False
    raw_conditions = raw.get("conditions")
    if not isinstance(raw_conditions, list):
        raise DataError(f"{where}.conditions must be a list")
    for index, raw_condition in enumerate(raw_conditions):
        cwhere = f"{where}.conditions[{index}]"
        if not isinstance(raw_condition, dict):
            raise DataError(f"{cwhere} must be an object")
        partitions = raw_condition.get("partitions")
        label = raw_condition.get("label", Label.DEFAULT_RULE)
        if label is not None and not isinstance(label, str):
            raise DataError(f"{cwhere}.label must be a string")
        if partitions is not None and not isinstance(partitions, list):
            raise DataError(f"{cwhere}.partitions must be a list")
        try:
            matchers = _compile_matchers(raw_condition, segments, cwhere)
        except Unsupported:
            unsupported = result(CONTROL, Label.UNSUPPORTED)
            conditions = []
            break

        bounds: list[float] = []
        results: list[Result] = []
        total: float = 0
        for pindex, partition in enumerate(partitions or ()):
            if not isinstance(partition, dict) or not isinstance(partition.get("treatment"), str):
                raise DataError(f"{cwhere}.partitions[{pindex}] needs a treatment string")
            size = partition.get("size")
            if isinstance(size, bool) or not isinstance(size, int | float):
                raise DataError(f"{cwhere}.partitions[{pindex}].size must be a number")
            total += size
            bounds.append(total)
            results.append(result(partition["treatment"], label))
            treatments.append(partition["treatment"])
        if partitions is None:
            fixed: Result | None = default
        elif total != 100:
            broken = True  # JavaScript throws building this flag: control/exception
            fixed = None
        else:
            # One partition holds every bucket (1..100): no need to hash.
            first = bisect_left(bounds, 1)
            fixed = results[first] if bounds[first] >= 100 else None
        rollout = raw_condition.get("conditionType") == "ROLLOUT"
        conditions.append(Condition(rollout, matchers, label, tuple(bounds), tuple(results), fixed))

    if broken:
        fixed_result: Result | None = Result(CONTROL, Label.EXCEPTION, None, change_number)
    elif status == "ARCHIVED":
        fixed_result = Result(CONTROL, Label.ARCHIVED, None, change_number)
    elif killed:
        fixed_result = result(default_treatment, Label.KILLED)
    else:
        fixed_result = None

    segment_refs, flag_refs, rbs_refs = _references(raw)
    return Flag(
        name=name,
        change_number=change_number,
        seed=seed,
        legacy_hash=algo != 2,
        allocation=allocation,
        allocation_seed=allocation_seed,
        conditions=tuple(conditions),
        prerequisites=tuple(prerequisites),
        fixed=fixed_result,
        unsupported=unsupported,
        default=default,
        not_in_split=result(default_treatment, Label.NOT_IN_SPLIT),
        prerequisites_not_met=result(default_treatment, Label.PREREQUISITES_NOT_MET),
        sets=frozenset(sets),
        traffic_type=traffic_type,
        impressions_disabled=impressions_disabled,
        configurations=configurations,
        treatments=tuple(dict.fromkeys(treatments)),
        default_treatment=default_treatment,
        segment_refs=segment_refs,
        flag_refs=flag_refs | {n for n, _ in prerequisites},
        rbs_refs=rbs_refs,
    )


def compile_rule_based_segment(
    raw: Any, segments: Callable[[str], SegmentCheck] = _no_segment
) -> RuleBasedSegment:
    name, where, change_number = _header(raw, "rule-based segment")

    excluded = _optional(raw, "excluded", dict, where) or {}
    keys = excluded.get("keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise DataError(f"{where}.excluded.keys must be a list of strings")
    excluded_segments: list[SegmentCheck] = []
    excluded_rbs: list[str] = []
    segment_refs, flag_refs, rbs_refs = _references(raw)
    for index, item in enumerate(excluded.get("segments") or []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise DataError(f"{where}.excluded.segments[{index}] needs a name")
        kind = item.get("type")
        if kind == "standard":
            excluded_segments.append(segments(item["name"]))
            segment_refs |= {item["name"]}
        elif kind == "rule-based":
            excluded_rbs.append(item["name"])
            rbs_refs |= {item["name"]}
        # "large" and unknown types never exclude on the server side.

    conditions: list[tuple[Match, ...]] = []
    matches_all = False
    raw_conditions = raw.get("conditions") or []
    if not isinstance(raw_conditions, list):
        raise DataError(f"{where}.conditions must be a list")
    for index, raw_condition in enumerate(raw_conditions):
        if not isinstance(raw_condition, dict):
            raise DataError(f"{where}.conditions[{index}] must be an object")
        try:
            conditions.append(
                _compile_matchers(raw_condition, segments, f"{where}.conditions[{index}]")
            )
        except Unsupported:
            matches_all = True
            break

    return RuleBasedSegment(
        name=name,
        change_number=change_number,
        excluded_keys=frozenset(keys),
        excluded_segments=tuple(excluded_segments),
        excluded_rbs=tuple(excluded_rbs),
        conditions=tuple(conditions),
        matches_all=matches_all,
        segment_refs=segment_refs,
        rbs_refs=rbs_refs,
        flag_refs=flag_refs,
    )


def _canonical(raw: dict[str, Any]) -> str:
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False)


def check_flag(raw: dict[str, Any]) -> tuple[str, list[str]]:
    """Compile ``raw`` to prove it usable: its compact JSON to store, and what is odd about it.

    Odd but valid, as Split's SDKs see it: partitions that do not sum to 100
    (every evaluation is control/"exception") and a matcher type this evaluator
    does not know (every evaluation is control, "targeting rule type
    unsupported by sdk").
    """
    flag = compile_flag(raw)
    warnings = []
    if flag.fixed is not None and flag.fixed.label == Label.EXCEPTION:
        warnings.append(
            f"flag {flag.name!r}: partitions do not sum to 100; it evaluates to control"
        )
    if flag.unsupported is not None:
        warnings.append(
            f"flag {flag.name!r}: a matcher type unknown to flagedge; it evaluates to "
            "control (targeting rule type unsupported by sdk)"
        )
    return _canonical(raw), warnings


def check_rule_based_segment(raw: dict[str, Any]) -> tuple[str, list[str]]:
    segment = compile_rule_based_segment(raw)
    warnings = []
    if segment.matches_all:
        warnings.append(
            f"rule-based segment {segment.name!r}: a matcher type unknown to "
            "flagedge; every key not excluded is a member"
        )
    return _canonical(raw), warnings


# -- the plan ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Plan:
    version: int
    flags: Mapping[str, Flag]
    rule_based_segments: Mapping[str, RuleBasedSegment]
    segments: Mapping[str, frozenset[str]]
    large_segments: Mapping[str, int]
    ff_till: int | None = None
    rbs_till: int | None = None
    segment_tills: Mapping[str, int] = field(default_factory=dict)
    sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _reach: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        flags: Iterable[dict[str, Any]],
        rule_based_segments: Iterable[dict[str, Any]] = (),
        segments: Mapping[str, Iterable[str]] | None = None,
        *,
        large_segments: Mapping[str, int] | None = None,
        version: int = 1,
        ff_till: int | None = None,
        rbs_till: int | None = None,
        segment_tills: Mapping[str, int] | None = None,
    ) -> Plan:
        """Compile a plan from raw definitions and segment members."""
        members = {name: frozenset(keys) for name, keys in (segments or {}).items()}
        large = dict(large_segments or {})

        def resolve(name: str) -> SegmentCheck:
            keys = members.get(name)
            if keys is not None:
                return lambda key, evaluation: key in keys
            if name in large:
                return lambda key, evaluation: name in evaluation.large
            return _no_segment(name)

        compiled = {}
        for raw in flags:
            flag = compile_flag(raw, resolve)
            compiled[flag.name] = flag
        rbs = {}
        for raw in rule_based_segments:
            segment = compile_rule_based_segment(raw, resolve)
            rbs[segment.name] = segment
        by_set: dict[str, list[str]] = {}
        for flag in compiled.values():
            for name in flag.sets:
                by_set.setdefault(name, []).append(flag.name)
        return cls(
            version=version,
            flags=compiled,
            rule_based_segments=rbs,
            segments=members,
            large_segments=large,
            ff_till=ff_till,
            rbs_till=rbs_till,
            segment_tills=dict(segment_tills or {}),
            sets={name: tuple(sorted(names)) for name, names in by_set.items()},
        )

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Plan:
        """Build from ``PlanStore.read_plan``'s answer."""
        return cls.build(
            [json.loads(body) for body in snapshot.get("flags", ())],
            [json.loads(body) for body in snapshot.get("rbs", ())],
            snapshot.get("segments") or {},
            large_segments=snapshot.get("large_segments") or {},
            version=snapshot["version"],
            ff_till=snapshot.get("ff_till"),
            rbs_till=snapshot.get("rbs_till"),
            segment_tills=snapshot.get("segment_tills") or {},
        )

    def large_segments_for(self, flag_names: Iterable[str]) -> frozenset[str]:
        """Large segments any of these flags can reach, through every reference."""
        if not self.large_segments:
            return frozenset()
        found: set[str] = set()
        for name in flag_names:
            reach = self._reach.get(name)
            if reach is None:
                reach = self._reach[name] = self._walk(name)
            found |= reach
        return frozenset(found)

    def _walk(self, start: str) -> frozenset[str]:
        seen_flags: set[str] = set()
        seen_rbs: set[str] = set()
        found: set[str] = set()
        flags = [start]
        rbs: list[str] = []
        while flags or rbs:
            if flags:
                name = flags.pop()
                if name in seen_flags or name not in self.flags:
                    continue
                seen_flags.add(name)
                flag = self.flags[name]
                segment_refs, flag_refs, rbs_refs = flag.segment_refs, flag.flag_refs, flag.rbs_refs
            else:
                name = rbs.pop()
                if name in seen_rbs or name not in self.rule_based_segments:
                    continue
                seen_rbs.add(name)
                segment = self.rule_based_segments[name]
                segment_refs, flag_refs = segment.segment_refs, segment.flag_refs
                rbs_refs = segment.rbs_refs
            found.update(s for s in segment_refs if s in self.large_segments)
            flags.extend(flag_refs)
            rbs.extend(rbs_refs)
        return frozenset(found)
