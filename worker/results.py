"""What an evaluation returns, and Split's labels."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CONTROL", "Label", "Result"]

CONTROL = "control"


class Label:
    """Split's impression labels (a matched condition carries its own)."""

    KILLED = "killed"
    DEFAULT_RULE = "default rule"
    NOT_FOUND = "definition not found"
    NOT_READY = "not ready"
    EXCEPTION = "exception"
    ARCHIVED = "archived"
    NOT_IN_SPLIT = "not in split"
    UNSUPPORTED = "targeting rule type unsupported by sdk"
    PREREQUISITES_NOT_MET = "prerequisites not met"
    FALLBACK_PREFIX = "fallback - "
    # flagedge's own, for input Split's SDKs refuse before evaluating:
    INVALID_KEY = "invalid key"
    INVALID_ATTRIBUTES = "invalid attributes"
    INVALID_FLAG_NAME = "invalid flag name"


class Result(NamedTuple):
    """One flag's treatment for one key.

    ``impression`` is False where Split records none: a flag not in the plan
    and input refused before evaluation. ``impressions_disabled`` is the
    flag's own setting (counted, but no impression sent).
    """

    treatment: str
    label: str | None
    config: str | None
    change_number: int | None
    impressions_disabled: bool = False
    impression: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "treatment": self.treatment,
            "label": self.label,
            "config": self.config,
            "changeNumber": self.change_number,
        }


def control(label: str, *, impression: bool = True) -> Result:
    return Result(CONTROL, label, None, None, False, impression)
