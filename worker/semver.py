"""Semantic versions as Split's semver matchers read them.

A version is ``MAJOR.MINOR.PATCH[-PRERELEASE][+METADATA]``: metadata is what
follows the first ``+``, the pre-release what follows the first ``-`` before
it, and each is split on ``.``. The core has exactly three numeric parts.
Leading zeros are dropped from numeric parts, so ``00.01.002`` is ``0.1.2``;
an empty pre-release, an empty identifier or empty metadata is invalid.

Equality compares the normalized text, metadata included. Order compares the
core numerically, then puts a release above its pre-releases, then compares
pre-release identifiers pairwise (numerically when both are numeric, else as
text), and finally ranks the shorter identifier list lower. Metadata plays no
part in the order.
"""

from __future__ import annotations

from functools import total_ordering

__all__ = ["Semver", "parse_semver"]


def _is_number(part: str) -> bool:
    return part.isascii() and part.isdigit()


def _digits(part: str) -> str:
    """A numeric part without leading zeros; kept as text, so any length compares."""
    return part.lstrip("0") or "0"


def _numeric_order(a: str, b: str) -> int:
    """Compare two normalized digit strings as numbers."""
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return (a > b) - (a < b)


@total_ordering
class Semver:
    __slots__ = ("core", "pre", "text")

    def __init__(self, core: tuple[str, str, str], pre: tuple[str, ...], metadata: str | None):
        self.core = core
        self.pre = pre
        text = ".".join(core)
        if pre:
            text += "-" + ".".join(pre)
        if metadata is not None:
            text += "+" + metadata
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Semver) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __lt__(self, other: Semver) -> bool:
        return self._compare(other) < 0

    def compare(self, other: Semver) -> int:
        """-1, 0 or 1; metadata is ignored, as in Split's matchers."""
        return self._compare(other)

    def _compare(self, other: Semver) -> int:
        for mine, theirs in zip(self.core, other.core, strict=True):
            order = _numeric_order(mine, theirs)
            if order:
                return order
        if not self.pre or not other.pre:
            # A release outranks every pre-release of the same core.
            return (not self.pre) - (not other.pre)
        for mine, theirs in zip(self.pre, other.pre, strict=False):
            if mine == theirs:
                continue
            if _is_number(mine) and _is_number(theirs):
                return _numeric_order(mine, theirs)
            return -1 if mine < theirs else 1
        return (len(self.pre) > len(other.pre)) - (len(self.pre) < len(other.pre))

    def __repr__(self) -> str:
        return f"Semver({self.text!r})"


def parse_semver(text: object) -> Semver | None:
    """The version in ``text``, or None when it is not a valid semver."""
    if not isinstance(text, str):
        return None

    metadata: str | None = None
    plus = text.find("+")
    if plus != -1:
        metadata = text[plus + 1 :]
        if not metadata:
            return None
        text = text[:plus]

    pre: tuple[str, ...] = ()
    dash = text.find("-")
    if dash != -1:
        identifiers = text[dash + 1 :].split(".")
        if any(not part for part in identifiers):
            return None
        pre = tuple(_digits(p) if _is_number(p) else p for p in identifiers)
        text = text[:dash]

    parts = text.split(".")
    if len(parts) != 3 or not all(_is_number(p) for p in parts):
        return None
    major, minor, patch = (_digits(p) for p in parts)
    return Semver((major, minor, patch), pre, metadata)
