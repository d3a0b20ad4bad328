"""Stack config into ``FlagedgeWorkerArgs``.

Every key is declared once, with its type, default and description, in
``Pulumi.yaml``; the Pulumi CLI applies those defaults, so this module reads
values and never repeats a default. The Worker's runtime settings
(``worker.settings.SETTINGS``) become bindings of the same name; the
deploy-only settings are listed in ``DEPLOY_SETTINGS``. Values are checked
here, so a bad one stops ``pulumi preview`` with a message instead of reaching
the Worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from flagedge.bundle import Bundle
from infra.component import FlagedgeWorkerArgs
from worker.settings import SETTINGS, Settings, SettingsError

__all__ = ["DEPLOY_SETTINGS", "DeploySetting", "args_from_config", "validate_cron"]


@dataclass(frozen=True)
class DeploySetting:
    key: str
    type: str  # string | boolean
    default: str | bool | None
    help: str


DEPLOY_SETTINGS: tuple[DeploySetting, ...] = (
    DeploySetting("accountId", "string", None, "Cloudflare account id (required)."),
    DeploySetting(
        "scriptName",
        "string",
        "",
        "Worker script name; empty means <project>-<stack>, unique per stack.",
    ),
    DeploySetting(
        "cronSchedule",
        "string",
        "* * * * *",
        "When the synchronizer runs (5-field cron, UTC); empty for none.",
    ),
    DeploySetting(
        "compatibilityDate",
        "string",
        "2026-06-01",
        "Workers compatibility date; 2026-06-01 selects Pyodide 0.28.2.",
    ),
    DeploySetting("workersDev", "boolean", True, "Serve on <script>.<subdomain>.workers.dev."),
    DeploySetting(
        "accountSubdomain",
        "string",
        "",
        "The account's workers.dev subdomain, only to print the Worker's URL.",
    ),
    DeploySetting("customDomain", "string", "", "Serve on this hostname (a zone in the account)."),
    DeploySetting("route", "string", "", "Serve on this route pattern, e.g. example.com/flags/*."),
    DeploySetting("zoneId", "string", "", "Zone of the custom domain or route."),
)

_CRON_FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def validate_cron(expression: str) -> str:
    """A five-field cron expression in the syntax Cloudflare accepts, else ValueError."""
    import re

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expression!r} must have 5 fields (minute hour day month weekday)")
    names = {
        "JAN": 1,
        "FEB": 2,
        "MAR": 3,
        "APR": 4,
        "MAY": 5,
        "JUN": 6,
        "JUL": 7,
        "AUG": 8,
        "SEP": 9,
        "OCT": 10,
        "NOV": 11,
        "DEC": 12,
        "SUN": 0,
        "MON": 1,
        "TUE": 2,
        "WED": 3,
        "THU": 4,
        "FRI": 5,
        "SAT": 6,
    }
    for index, (text, (low, high)) in enumerate(zip(fields, _CRON_RANGES, strict=True)):
        normalized = re.sub(r"[A-Za-z]{3}", lambda m: str(names.get(m[0].upper(), -1)), text)
        if index == 2:
            normalized = normalized.replace("L", "31").replace("?", "*")
        if index == 4:
            normalized = normalized.replace("?", "*").replace("L", "").replace("#", "/")
        if not re.fullmatch(_CRON_FIELD, normalized):
            raise ValueError(f"cron {expression!r}: field {index + 1} ({text!r}) is not valid")
        for number in map(int, re.findall(r"\d+", normalized.split("/")[0])):
            if not low <= number <= high:
                raise ValueError(
                    f"cron {expression!r}: {number} is outside {low}-{high} in field {index + 1}"
                )
    return expression


def args_from_config(config: pulumi.Config, bundle: Bundle) -> FlagedgeWorkerArgs:
    """Read and check the stack's config."""
    plain: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.kind == "secret":
            continue
        value = config.get(setting.pulumi)
        if value is None:
            raise pulumi.RunError(f"config {setting.pulumi} is not set and has no default")
        plain[setting.env] = value
    try:
        Settings.load(plain.get)
    except SettingsError as error:
        raise pulumi.RunError(f"bad flagedge config: {error}") from error

    cron = config.require("cronSchedule")
    if cron:
        try:
            validate_cron(cron)
        except ValueError as error:
            raise pulumi.RunError(f"config cronSchedule: {error}") from error

    script_name = config.get("scriptName") or f"{pulumi.get_project()}-{pulumi.get_stack()}"
    return FlagedgeWorkerArgs(
        account_id=config.require("accountId"),
        script_name=script_name,
        bundle=bundle,
        sdk_key=config.require_secret("splitSdkKey"),
        admin_token=config.get_secret("adminToken"),
        eval_token=config.get_secret("evalToken"),
        compatibility_date=config.require("compatibilityDate"),
        cron_schedule=cron,
        plain_settings=plain,
        workers_dev=config.require_bool("workersDev"),
        account_subdomain=config.get("accountSubdomain") or "",
        custom_domain=config.get("customDomain") or "",
        route=config.get("route") or "",
        zone_id=config.get("zoneId") or "",
    )


_KIND_TYPES = {"int": "integer", "bool": "boolean"}


def declared_config() -> dict[str, dict[str, object]]:
    """The ``config`` block ``Pulumi.yaml`` must hold (a test compares the two)."""
    block: dict[str, dict[str, object]] = {}
    for deploy in DEPLOY_SETTINGS:
        entry: dict[str, object] = {"type": deploy.type, "description": deploy.help}
        if deploy.default is not None:
            entry["default"] = deploy.default
        block[deploy.key] = entry
    for setting in SETTINGS:
        entry = {"type": _KIND_TYPES.get(setting.kind, "string"), "description": setting.help}
        if setting.kind == "secret":
            entry["secret"] = True
        else:
            default: object = setting.default
            if setting.kind == "int":
                default = int(setting.default)
            entry["default"] = default
        block[setting.pulumi] = entry
    return block


def settings_table() -> str:
    """The README's settings table, from the same registries as ``Pulumi.yaml``."""
    rows = [
        "| Pulumi config | Worker binding = environment variable | `flagedge` flag"
        " | default | what |",
        "|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        default = "(secret)" if setting.kind == "secret" else f"`{setting.default}`"
        if setting.default == "" and setting.kind != "secret":
            default = "empty"
        cli = f"`{setting.cli}`" if setting.cli else ""
        rows.append(
            f"| `{setting.pulumi}` | `{setting.env}` | {cli} | {default} | {setting.help} |"
        )
    for deploy in DEPLOY_SETTINGS:
        if deploy.default is None:
            default = "required"
        elif deploy.default == "":
            default = "empty"
        elif isinstance(deploy.default, bool):
            default = f"`{str(deploy.default).lower()}`"
        else:
            default = f"`{deploy.default}`"
        rows.append(f"| `{deploy.key}` | (deploy only) | | {default} | {deploy.help} |")
    from flagedge.cli import LOCAL_OPTIONS

    for flag, default, help_text in LOCAL_OPTIONS:
        shown = f"`{default}`" if default else "empty"
        rows.append(f"| (local only) | | `{flag}` | {shown} | {help_text} |")
    return "\n".join(rows)
