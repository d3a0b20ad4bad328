"""Every runtime setting of flagedge, named once.

A setting has one name in each place it can be set: the Worker binding and
the environment variable share a name (``FLAGEDGE_...`` or ``SPLIT_...``), the
Pulumi config key is its camelCase twin, and a few have a command-line flag.
``Pulumi.yaml``, the README's settings table and the Pulumi program are checked
against this table by the tests, so they cannot drift apart.

``Settings.load`` reads values from any mapping-like source (``os.environ``,
the Worker's ``env``) and reports every bad value at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from worker.evaluator import Fallbacks

__all__ = [
    "SETTINGS",
    "ImpressionsMode",
    "Setting",
    "Settings",
    "SettingsError",
    "normalize_flag_sets",
]

DEFAULT_SDK_URL = "https://sdk.split.io/api"
DEFAULT_EVENTS_URL = "https://events.split.io/api"
DEFAULT_TELEMETRY_URL = "https://telemetry.split.io/api"

ImpressionsMode = Literal["OPTIMIZED", "DEBUG", "NONE"]
Kind = Literal["str", "secret", "int", "float", "bool", "list", "mode", "url", "spec", "json"]

_FLAG_SET = re.compile(r"^[a-z0-9][_a-z0-9]{0,49}$")
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
    "": False,
}


class SettingsError(ValueError):
    """One or more settings have values flagedge cannot use."""


@dataclass(frozen=True)
class Setting:
    attr: str
    env: str
    pulumi: str
    default: str
    kind: Kind
    help: str
    cli: str | None = None
    minimum: float = 0


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "sdk_key",
        "SPLIT_SDK_KEY",
        "splitSdkKey",
        "",
        "secret",
        "Split server-side SDK key. Locally, without it the plan comes from a plan file.",
    ),
    Setting(
        "sdk_url",
        "SPLIT_SDK_URL",
        "splitSdkUrl",
        DEFAULT_SDK_URL,
        "url",
        "Split SDK API base URL (or a Split proxy's).",
    ),
    Setting(
        "events_url",
        "SPLIT_EVENTS_URL",
        "splitEventsUrl",
        DEFAULT_EVENTS_URL,
        "url",
        "Split events API base URL (impressions and events).",
    ),
    Setting(
        "telemetry_url",
        "SPLIT_TELEMETRY_URL",
        "splitTelemetryUrl",
        DEFAULT_TELEMETRY_URL,
        "url",
        "Split telemetry API base URL (unique keys in NONE mode).",
    ),
    Setting(
        "spec",
        "SPLIT_SPEC_VERSION",
        "splitSpecVersion",
        "1.3",
        "spec",
        "splitChanges spec to request: 1.3 (rule-based segments) or 1.1 for old proxies.",
    ),
    Setting(
        "flag_sets",
        "FLAGEDGE_FLAG_SETS",
        "flagSets",
        "",
        "list",
        "Comma-separated flag sets to sync; empty syncs every flag.",
        "--flag-sets",
    ),
    Setting(
        "impressions_mode",
        "FLAGEDGE_IMPRESSIONS_MODE",
        "impressionsMode",
        "OPTIMIZED",
        "mode",
        "OPTIMIZED, DEBUG or NONE, as in Split's SDKs.",
    ),
    Setting(
        "fallback_treatments",
        "FLAGEDGE_FALLBACK_TREATMENTS",
        "fallbackTreatments",
        "",
        "json",
        'What replaces control: {"global": T, "byFlag": {"flag": T}}, T a treatment '
        'or {"treatment", "config"}.',
    ),
    Setting(
        "cache_seconds",
        "FLAGEDGE_CACHE_SECONDS",
        "cacheSeconds",
        "5",
        "float",
        "How long an isolate serves its cached plan before asking the store for the version.",
    ),
    Setting(
        "large_segment_size",
        "FLAGEDGE_LARGE_SEGMENT_SIZE",
        "largeSegmentSize",
        "5000",
        "int",
        "Segments with more keys stay in the Durable Object and are looked up per request.",
    ),
    Setting(
        "sync_subrequests",
        "FLAGEDGE_SYNC_SUBREQUESTS",
        "syncSubrequests",
        "50",
        "int",
        "Subrequests one sync run may make (Split API and store calls); 50 fits the free plan.",
        minimum=5,
    ),
    Setting(
        "sync_seconds",
        "FLAGEDGE_SYNC_SECONDS",
        "syncSeconds",
        "25",
        "float",
        "Wall-clock budget of one sync run, in seconds.",
        minimum=1,
    ),
    Setting(
        "eval_token",
        "FLAGEDGE_EVAL_TOKEN",
        "evalToken",
        "",
        "secret",
        "Bearer token the evaluation routes require; empty leaves them open.",
    ),
    Setting(
        "admin_token",
        "FLAGEDGE_ADMIN_TOKEN",
        "adminToken",
        "",
        "secret",
        "Bearer token for POST /admin/sync; empty disables the route (403).",
    ),
    Setting(
        "cors_origins",
        "FLAGEDGE_CORS_ORIGINS",
        "corsOrigins",
        "",
        "list",
        "Comma-separated origins allowed to call from browsers; * allows any.",
    ),
)

_BY_ATTR = {s.attr: s for s in SETTINGS}


def normalize_flag_sets(values: list[str]) -> tuple[str, ...]:
    """Lowercase, trim, deduplicate and sort flag-set names as Split does.

    Raises ``SettingsError`` for a name Split would reject, instead of quietly
    dropping it as the SDKs do: a typo in a deploy's config should stop it.
    """
    names = {v.strip().lower() for v in values if v.strip()}
    bad = sorted(n for n in names if not _FLAG_SET.match(n))
    if bad:
        raise SettingsError(
            f"invalid flag set name(s) {', '.join(map(repr, bad))}: a flag set name is 1 to 50 "
            "lowercase letters, digits or underscores, starting with a letter or digit"
        )
    return tuple(sorted(names))


def _parse(setting: Setting, raw: str) -> Any:
    kind = setting.kind
    text = raw.strip()
    if kind == "secret":
        # A token pasted with a newline would lock every route: trim it, and refuse
        # one that is nothing but whitespace (it would neither protect nor work).
        if raw and not raw.strip():
            raise ValueError("is only whitespace; unset it or give a real value")
        return raw.strip()
    if kind == "str":
        return raw
    if kind == "url":
        if not re.match(r"^https?://[^\s/]+", text):
            raise ValueError(f"{text!r} is not an http(s) URL")
        return text.rstrip("/")
    if kind == "bool":
        if text.lower() not in _BOOLEANS:
            raise ValueError(f"{text!r} is not a boolean (true/false)")
        return _BOOLEANS[text.lower()]
    if kind == "int":
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(f"{text!r} is not a whole number")
        value = int(text)
        if value < setting.minimum:
            raise ValueError(f"{value} is below the least useful value, {setting.minimum:g}")
        return value
    if kind == "float":
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", text):
            raise ValueError(f"{text!r} is not a number")
        number = float(text)
        if not math.isfinite(number) or number < setting.minimum:
            raise ValueError(f"{text!r} is not a number of at least {setting.minimum:g}")
        return number
    if kind == "mode":
        mode = text.upper()
        if mode not in ("OPTIMIZED", "DEBUG", "NONE"):
            raise ValueError(f"{text!r} is not one of OPTIMIZED, DEBUG, NONE")
        return mode
    if kind == "spec":
        if text not in ("1.1", "1.2", "1.3"):
            raise ValueError(f"{text!r} is not a splitChanges spec (1.1, 1.2 or 1.3)")
        return text
    if kind == "json":
        if not text:
            return None
        import json

        from worker.evaluator import FallbackError, Fallbacks

        try:
            return Fallbacks.parse(json.loads(text))
        except (ValueError, RecursionError, FallbackError) as error:
            raise ValueError(str(error)) from error
    if kind == "list":
        items = [part.strip() for part in raw.split(",") if part.strip()]
        if setting.attr == "flag_sets":
            return normalize_flag_sets(items)
        if setting.attr == "cors_origins":
            bad = [o for o in items if o != "*" and not re.fullmatch(r"https?://[^/\s]+", o)]
            if bad:
                raise ValueError(
                    f"{', '.join(map(repr, bad))}: an origin is scheme://host[:port] or *"
                )
        return tuple(items)
    raise AssertionError(kind)


@dataclass(frozen=True)
class Settings:
    """Parsed settings. ``repr`` masks every secret."""

    sdk_key: str = ""
    sdk_url: str = DEFAULT_SDK_URL
    events_url: str = DEFAULT_EVENTS_URL
    telemetry_url: str = DEFAULT_TELEMETRY_URL
    spec: str = "1.3"
    flag_sets: tuple[str, ...] = ()
    impressions_mode: ImpressionsMode = "OPTIMIZED"
    fallback_treatments: Fallbacks | None = None
    cache_seconds: float = 5.0
    large_segment_size: int = 5000
    sync_subrequests: int = 50
    sync_seconds: float = 25.0
    eval_token: str = ""
    admin_token: str = ""
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def load(cls, get: Callable[[str], str | None], **overrides: Any) -> Settings:
        """Read every setting through ``get(env_name)``; overrides win."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            raw = get(setting.env)
            if raw is None or (raw.strip() == "" and setting.kind != "secret"):
                raw = setting.default
            try:
                values[setting.attr] = _parse(setting, raw)
            except (ValueError, SettingsError) as error:
                problems.append(f"{setting.env}: {error}")
        if problems:
            raise SettingsError("bad settings: " + "; ".join(problems))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if _BY_ATTR[f.name].kind == "secret":
                value = "***" if value else ""
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"
