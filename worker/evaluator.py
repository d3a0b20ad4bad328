"""The evaluator: a flag's treatment for a key, as Split computes it.

Pure functions over a ``Plan``: no I/O, no clock, no logging. The order is
Split's:

1. a flag missing from the plan: ``control``, "definition not found";
2. a flag that cannot be built (partitions not summing to 100): ``control``,
   "exception" (the JavaScript SDK throws here; callers here never see one);
3. killed: the default treatment, "killed";
4. prerequisites, in order, each a full evaluation with the same key and
   attributes; the first unmet one gives the default, "prerequisites not met";
5. a flag with a matcher type this evaluator does not know: ``control``,
   "targeting rule type unsupported by sdk" (no traffic allocation check, as
   in JavaScript);
6. conditions in order; the first ROLLOUT condition reached checks traffic
   allocation (``bucket > allocation``: "not in split"); the first condition
   whose matchers all match picks the partition of the key's bucket;
7. none matched: the default treatment, "default rule".

Dependencies (``IN_SPLIT_TREATMENT``, prerequisites) and rule-based
segments are evaluated through one ``Evaluation`` per call, which memoises
each flag, so a bulk call evaluates every flag once. A cycle among them makes
the evaluation ``control``/"exception" (the JavaScript SDK recurses until
the stack overflows).

Fallback treatments replace ``control`` at the top level only, never inside
a dependency, with the label prefixed "fallback - ", as Split's SDKs do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.inputs import (
    InputError,
    parse_attributes,
    parse_flag_name,
    parse_flag_sets,
    parse_key,
)
from worker.plan import Flag, Plan
from worker.results import CONTROL, Label, Result, control

__all__ = ["Evaluation", "Evaluator", "Fallback", "FallbackError", "Fallbacks"]

_NOT_FOUND = control(Label.NOT_FOUND, impression=False)
_EXCEPTION = control(Label.EXCEPTION)
_NOT_READY = control(Label.NOT_READY)
_EMPTY: frozenset[str] = frozenset()
_FALLBACK_TREATMENT = re.compile(r"^[0-9]+[.a-zA-Z0-9_-]*$|^[a-zA-Z]+[a-zA-Z0-9_-]*$")


class _Cycle(Exception):
    pass


class Evaluation:
    """One call's key, attributes and memo; what matchers reach the plan through."""

    __slots__ = ("active", "attributes", "bucketing_key", "key", "large", "memo", "plan")

    def __init__(
        self,
        plan: Plan,
        key: str,
        bucketing_key: str,
        attributes: Mapping[str, Any] | None,
        large: frozenset[str] = _EMPTY,
    ) -> None:
        self.plan = plan
        self.key = key
        self.bucketing_key = bucketing_key
        self.attributes = attributes
        self.large = large
        self.memo: dict[str, Result] = {}
        self.active: set[str] = set()

    def result_of(self, name: str) -> Result:
        result = self.memo.get(name)
        if result is not None:
            return result
        flag = self.plan.flags.get(name)
        if flag is None:
            result = _NOT_FOUND
        else:
            if name in self.active:
                raise _Cycle(name)
            self.active.add(name)
            try:
                result = evaluate_flag(flag, self)
            finally:
                self.active.discard(name)
        self.memo[name] = result
        return result

    def treatment_of(self, name: str) -> str:
        return self.result_of(name).treatment

    def in_rule_based_segment(self, name: str) -> bool:
        segment = self.plan.rule_based_segments.get(name)
        if segment is None:
            return False
        key = self.key
        if key in segment.excluded_keys:
            return False
        for member in segment.excluded_segments:
            if member(key, self):
                return False
        guard = "\0rbs:" + name
        if guard in self.active:
            raise _Cycle(name)
        self.active.add(guard)
        try:
            for other in segment.excluded_rbs:
                if self.in_rule_based_segment(other):
                    return False
            if segment.matches_all:
                return True
            attributes = self.attributes
            for matchers in segment.conditions:
                for match in matchers:
                    if not match(key, attributes, self):
                        break
                else:
                    return True
            return False
        finally:
            self.active.discard(guard)


def evaluate_flag(flag: Flag, evaluation: Evaluation) -> Result:
    """Steps 2 to 7 above, for a flag that is in the plan."""
    fixed = flag.fixed
    if fixed is not None:
        return fixed
    for name, accepted in flag.prerequisites:
        if evaluation.result_of(name).treatment not in accepted:
            return flag.prerequisites_not_met
    if flag.unsupported is not None:
        return flag.unsupported

    key = evaluation.key
    attributes = evaluation.attributes
    allocation = flag.allocation
    for condition in flag.conditions:
        if allocation is not None and condition.rollout:
            if flag.bucket(evaluation.bucketing_key, flag.allocation_seed) > allocation:
                return flag.not_in_split
            allocation = None
        for match in condition.matchers:
            if not match(key, attributes, evaluation):
                break
        else:
            fixed = condition.fixed
            if fixed is not None:
                return fixed
            return condition.pick(flag.bucket(evaluation.bucketing_key, flag.seed))
    return flag.default


class FallbackError(ValueError):
    """A fallback treatment Split's SDKs would refuse."""


@dataclass(frozen=True)
class Fallback:
    treatment: str
    config: str | None = None

    def __post_init__(self) -> None:
        if len(self.treatment) > 100 or not _FALLBACK_TREATMENT.match(self.treatment):
            raise FallbackError(
                f"fallback treatment {self.treatment!r} is not a valid treatment name "
                "(letters, digits, '_', '-', '.'; at most 100 characters)"
            )


@dataclass(frozen=True)
class Fallbacks:
    """What replaces ``control``: per flag first, then for every flag."""

    global_: Fallback | None = None
    by_flag: Mapping[str, Fallback] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> Fallbacks:
        """From ``{"global": T, "byFlag": {flag: T}}``, T a treatment or ``{treatment, config}``."""
        if raw in (None, ""):
            return cls()
        if not isinstance(raw, dict):
            raise FallbackError("fallback treatments must be a JSON object")

        def one(value: Any, where: str) -> Fallback:
            if isinstance(value, str):
                return Fallback(value)
            if isinstance(value, dict) and isinstance(value.get("treatment"), str):
                config = value.get("config")
                if config is not None and not isinstance(config, str):
                    raise FallbackError(f"{where}.config must be a JSON string or null")
                return Fallback(value["treatment"], config)
            raise FallbackError(f"{where} must be a treatment or {{treatment, config}}")

        by_flag = raw.get("byFlag")
        if by_flag is None:
            by_flag = {}
        if not isinstance(by_flag, dict):
            raise FallbackError("byFlag must map flag names to fallbacks")
        return cls(
            global_=one(raw["global"], "global") if raw.get("global") is not None else None,
            by_flag={name: one(value, f"byFlag[{name!r}]") for name, value in by_flag.items()},
        )

    def apply(self, name: str | None, result: Result) -> Result:
        if result.treatment != CONTROL:
            return result
        fallback = self.by_flag.get(name) if name is not None else None
        fallback = fallback or self.global_
        if fallback is None:
            return result
        label = Label.FALLBACK_PREFIX + (result.label or "")
        return result._replace(treatment=fallback.treatment, label=label, config=fallback.config)


_NO_FALLBACKS = Fallbacks()


class Evaluator:
    """Evaluates flags over one plan (or none yet). Never raises."""

    def __init__(self, plan: Plan | None, fallbacks: Fallbacks | None = None) -> None:
        self.plan = plan
        self.fallbacks = fallbacks or _NO_FALLBACKS

    def evaluate(
        self,
        key: Any,
        flag: Any,
        attributes: Any = None,
        *,
        bucketing_key: Any = None,
        large: frozenset[str] = _EMPTY,
    ) -> Result:
        """One flag for one key; ``large`` names the large segments holding the key."""
        name = flag if isinstance(flag, str) else None
        try:
            name = parse_flag_name(flag)
            matching, bucketing = parse_key(key, bucketing_key)
            attributes = parse_attributes(attributes)
            plan = self.plan
            if plan is None:
                result = _NOT_READY
            else:
                result = Evaluation(plan, matching, bucketing, attributes, large).result_of(name)
        except InputError as error:
            result = control(error.label, impression=False)
        except Exception:  # a cycle, or any failure: never raise to a caller (the SDKs' contract)
            result = _EXCEPTION
        return self.fallbacks.apply(name, result)

    def evaluate_many(
        self,
        key: Any,
        flags: Iterable[Any],
        attributes: Any = None,
        *,
        bucketing_key: Any = None,
        large: frozenset[str] = _EMPTY,
    ) -> dict[str, Result]:
        """Several flags for one key, each evaluated once."""
        names: dict[str, str | None] = {}
        invalid: dict[str, Result] = {}
        for raw in flags:
            try:
                names.setdefault(parse_flag_name(raw), None)
            except InputError as error:
                invalid[str(raw)] = control(error.label, impression=False)
        try:
            matching, bucketing = parse_key(key, bucketing_key)
            attributes = parse_attributes(attributes)
        except InputError as error:
            refused = control(error.label, impression=False)
            return {n: self.fallbacks.apply(n, refused) for n in (*names, *invalid)}

        results: dict[str, Result] = {}
        plan = self.plan
        evaluation = (
            Evaluation(plan, matching, bucketing, attributes, large) if plan is not None else None
        )
        for name in names:
            if evaluation is None:
                result = _NOT_READY
            else:
                try:
                    result = evaluation.result_of(name)
                except Exception:  # a cycle or a failure: one broken flag fails no other
                    result = _EXCEPTION
                    evaluation.active.clear()
            results[name] = self.fallbacks.apply(name, result)
        for name, result in invalid.items():
            results[name] = self.fallbacks.apply(None, result)
        return results

    def flags_in_sets(self, sets: Iterable[Any]) -> list[str]:
        """Flags in any of ``sets`` (names normalized as Split does), sorted."""
        if self.plan is None:
            return []
        found: set[str] = set()
        for name in parse_flag_sets(sets):
            found.update(self.plan.sets.get(name, ()))
        return sorted(found)

    def evaluate_by_sets(
        self,
        key: Any,
        sets: Iterable[Any],
        attributes: Any = None,
        *,
        bucketing_key: Any = None,
        large: frozenset[str] = _EMPTY,
    ) -> dict[str, Result]:
        return self.evaluate_many(
            key,
            self.flags_in_sets(sets),
            attributes,
            bucketing_key=bucketing_key,
            large=large,
        )
