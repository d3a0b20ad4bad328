"""Running the Pulumi program under mocks, with config as the Pulumi CLI gives it.

The CLI fills in the defaults declared in ``Pulumi.yaml`` and mocks do not,
so ``run_program`` reads them from ``Pulumi.yaml`` and feeds them in. The
only seam mocked is Cloudflare's API: resource registration and the
``getWorkersScripts`` invoke (the live scripts and their migration tags).
"""

from __future__ import annotations

import asyncio
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "flagedge"
SECRET_SIG = "4dabf18193072939515e22adb298388d"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class CloudflareMocks(pulumi.runtime.Mocks):
    live_scripts: list[dict[str, Any]] = field(default_factory=list)
    resources: list[Registered] = field(default_factory=list)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs)))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.invokes.append((args.token, dict(args.args)))
        if args.token == "cloudflare:index/getWorkersScripts:getWorkersScripts":
            return {"accountId": args.args.get("accountId"), "results": self.live_scripts}
        raise AssertionError(f"unexpected invoke {args.token}")

    def of_type(self, suffix: str) -> list[Registered]:
        return [r for r in self.resources if r.type.endswith(suffix)]

    def one(self, suffix: str) -> Registered:
        found = self.of_type(suffix)
        assert len(found) == 1, f"expected one {suffix}, got {[r.name for r in found]}"
        return found[0]


def declared_defaults() -> dict[str, str]:
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    values = {}
    for key, entry in config.items():
        if "default" in entry:
            default = entry["default"]
            values[key] = json.dumps(default) if isinstance(default, bool) else str(default)
    return values


REQUIRED = {"accountId": "0123456789abcdef0123456789abcdef", "splitSdkKey": "sdk-key-not-real"}
SECRETS = ("splitSdkKey", "adminToken", "evalToken")


def run_program(
    overrides: dict[str, str] | None = None,
    *,
    live_scripts: list[dict[str, Any]] | None = None,
    stack: str = "dev",
) -> tuple[CloudflareMocks, dict[str, Any]]:
    """Run infra/__main__.py; returns the mocks and the stack's exports."""
    # pulumi.runtime.test runs on the current event loop; asyncio.run elsewhere leaves none.
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = CloudflareMocks(live_scripts=list(live_scripts or []))
    values = {**declared_defaults(), **REQUIRED, **(overrides or {})}
    config = {f"{PROJECT}:{k}": v for k, v in values.items()}
    pulumi.runtime.set_all_config(config, [f"{PROJECT}:{k}" for k in SECRETS if k in values])
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)

    exports: dict[str, Any] = {}
    resolved: dict[str, Any] = {}
    original_export = pulumi.export

    def capture(name: str, value: Any) -> None:
        exports[name] = value
        original_export(name, value)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        pulumi.export = capture
        try:
            runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = original_export
        return pulumi.Output.all(**exports).apply(resolved.update)

    program()
    return mocks, resolved


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270"


def unwrap(value: Any) -> Any:
    """An input with every secret marker removed."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value
