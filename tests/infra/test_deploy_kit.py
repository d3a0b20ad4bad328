"""The deploy kit under Pulumi mocks: graph, settings, secrets, migrations, outputs, stacks."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys

import pulumi
import pulumi_cloudflare as cloudflare
import pytest
import yaml

from flagedge.bundle import build_bundle
from infra import component as component_module
from infra.config import DEPLOY_SETTINGS, validate_cron
from infra.migrations import MIGRATIONS, Migration
from tests.infra.mocks import ROOT, is_secret, run_program, unwrap
from worker.settings import SETTINGS

ACCOUNT = "0123456789abcdef0123456789abcdef"


def live(script: str, tag: str | None) -> list[dict]:
    return [
        {"id": "someone-elses-worker", "migrationTag": "v9"},
        {"id": script, "migrationTag": tag or ""},
    ]


# -- the graph and its inputs --------------------------------------------------------


def test_the_resource_graph():
    mocks, exports = run_program(
        {"accountSubdomain": "acme", "adminToken": "adm", "evalToken": "ev"}
    )
    names = sorted((r.type, r.name) for r in mocks.resources)
    assert names == sorted(
        [
            ("flagedge:index:Worker", "flagedge"),
            ("cloudflare:index/workersScript:WorkersScript", "flagedge-script"),
            ("cloudflare:index/workersCronTrigger:WorkersCronTrigger", "flagedge-cron"),
            (
                "cloudflare:index/workersScriptSubdomain:WorkersScriptSubdomain",
                "flagedge-workers-dev",
            ),
        ]
    )
    assert exports == {
        "url": "https://flagedge-dev.acme.workers.dev",
        "scriptName": "flagedge-dev",
        "cronSchedule": "* * * * *",
        "bundleHash": build_bundle().hash,
    }
    subdomain = mocks.one("WorkersScriptSubdomain").inputs
    assert (subdomain["enabled"], subdomain["previewsEnabled"]) == (True, False)


def test_every_runtime_setting_is_a_binding_with_pulumi_yamls_default():
    mocks, _ = run_program()
    bindings = {b["name"]: b for b in unwrap(mocks.one("WorkersScript").inputs["bindings"])}
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for setting in SETTINGS:
        if setting.kind == "secret":
            continue
        binding = bindings[setting.env]
        assert binding["type"] == "plain_text"
        assert binding["text"] == str(declared[setting.pulumi]["default"])


def test_settings_from_stack_config_reach_the_worker():
    mocks, _ = run_program({"flagSets": "web,ios", "impressionsMode": "NONE", "cacheSeconds": "2"})
    bindings = {
        b["name"]: b["text"]
        for b in unwrap(mocks.one("WorkersScript").inputs["bindings"])
        if b["type"] == "plain_text"
    }
    assert (
        bindings["FLAGEDGE_FLAG_SETS"],
        bindings["FLAGEDGE_IMPRESSIONS_MODE"],
        bindings["FLAGEDGE_CACHE_SECONDS"],
    ) == ("web,ios", "NONE", "2")


# -- secrets -------------------------------------------------------------------------------


def test_tokens_are_secret_text_bindings_when_set_and_absent_otherwise():
    mocks, _ = run_program({"adminToken": "adm1n", "evalToken": "ev4l"})
    raw = mocks.one("WorkersScript").inputs["bindings"]
    assert is_secret(raw)
    bindings = {b["name"]: b for b in unwrap(raw)}
    for name, value in (
        ("SPLIT_SDK_KEY", "sdk-key-not-real"),
        ("FLAGEDGE_ADMIN_TOKEN", "adm1n"),
        ("FLAGEDGE_EVAL_TOKEN", "ev4l"),
    ):
        assert bindings[name] == {"name": name, "type": "secret_text", "text": value}
    plain = {b["name"] for b in unwrap(run_program()[0].one("WorkersScript").inputs["bindings"])}
    assert "FLAGEDGE_ADMIN_TOKEN" not in plain and "FLAGEDGE_EVAL_TOKEN" not in plain


def test_no_secret_is_a_plain_input_or_an_export():
    secrets = ("sdk-key-not-real", "adm1n", "ev4l")
    mocks, exports = run_program(
        {"adminToken": "adm1n", "evalToken": "ev4l", "accountSubdomain": "acme"}
    )
    for resource in mocks.resources:
        for key, value in resource.inputs.items():
            if is_secret(value):
                continue
            text = json.dumps(value)
            assert not any(s in text for s in secrets), (resource.name, key)
    assert not any(s in json.dumps(exports) for s in secrets)


def test_secret_settings_are_declared_secret_in_pulumi_yaml():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key in ("splitSdkKey", "adminToken", "evalToken"):
        assert declared[key].get("secret") is True and "default" not in declared[key]


# -- Durable Object migrations --------------------------------------------------------------


def test_first_deploy_creates_the_store_class():
    mocks, _ = run_program(live_scripts=[{"id": "someone-elses-worker", "migrationTag": "v9"}])
    assert mocks.one("WorkersScript").inputs["migrations"] == {
        "newTag": "v1",
        "newSqliteClasses": ["FlagStore"],
    }
    assert mocks.invokes == [
        ("cloudflare:index/getWorkersScripts:getWorkersScripts", {"accountId": ACCOUNT})
    ]


def test_an_update_does_not_send_an_applied_migration_again():
    mocks, _ = run_program(live_scripts=live("flagedge-dev", "v1"))
    assert "migrations" not in mocks.one("WorkersScript").inputs


def test_after_destroy_the_next_up_migrates_from_scratch():
    mocks, _ = run_program(live_scripts=[])  # `pulumi destroy` removed the script and its tag
    assert mocks.one("WorkersScript").inputs["migrations"]["newTag"] == "v1"


def test_a_rename_is_the_next_migration_after_the_live_tag(monkeypatch):
    renamed = (*MIGRATIONS, Migration("v2", renamed_classes=(("FlagStore", "PlanStoreV2"),)))
    monkeypatch.setattr(component_module, "MIGRATIONS", renamed)
    monkeypatch.setattr(component_module, "STORE_CLASS", "PlanStoreV2")
    monkeypatch.setattr("flagedge.bundle.Bundle.exports", lambda self, name: True)
    mocks, _ = run_program(live_scripts=live("flagedge-dev", "v1"))
    script = mocks.one("WorkersScript").inputs
    assert script["migrations"] == {
        "oldTag": "v1",
        "newTag": "v2",
        "renamedClasses": [{"from": "FlagStore", "to": "PlanStoreV2"}],
    }
    bindings = {b["name"]: b for b in unwrap(script["bindings"])}
    assert bindings["FLAG_STORE"]["className"] == "PlanStoreV2"


def test_a_live_tag_this_code_does_not_know_stops_the_deploy():
    with pytest.raises(Exception, match="migration tag is 'v7'"):
        run_program(live_scripts=live("flagedge-dev", "v7"))


def test_a_binding_to_a_class_the_bundle_lacks_stops_the_deploy(monkeypatch):
    monkeypatch.setattr("flagedge.bundle.Bundle.exports", lambda self, name: False)
    with pytest.raises(Exception, match="does not define and export"):
        run_program()


# -- repeatability ------------------------------------------------------------------------------


def test_running_again_on_an_unchanged_tree_gives_the_same_inputs():
    first, _ = run_program(live_scripts=live("flagedge-dev", "v1"))
    second, _ = run_program(live_scripts=live("flagedge-dev", "v1"))
    # Registration order is not part of the contract; the set of inputs is.
    assert {r.name: r.inputs for r in first.resources} == {
        r.name: r.inputs for r in second.resources
    }


def test_the_uploaded_modules_are_flagedge_bundles():
    mocks, exports = run_program()
    script = mocks.one("WorkersScript").inputs
    printed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "flagedge.cli", "bundle", "--json"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    )
    assert printed["hash"] == exports["bundleHash"]
    uploaded = {script["mainModule"]: script["content"].encode()}
    import base64

    uploaded.update(
        {name: base64.b64decode(f["contentBase64"]) for name, f in script["files"].items()}
    )
    import hashlib

    assert {m["module"]: m["sha256"] for m in printed["modules"]} == {
        name: hashlib.sha256(content).hexdigest() for name, content in uploaded.items()
    }
    vendored = [m for m in printed["modules"] if m["module"].startswith("python_modules/")]
    assert {m["type"] for m in vendored} == {"application/octet-stream"}
    assert any(m["module"] == "python_modules/workers/__init__.py" for m in vendored)


# -- names, URLs and routes --------------------------------------------------------------------


def test_script_names_cannot_collide_between_stacks():
    dev = run_program(stack="dev")[1]["scriptName"]
    prod = run_program(stack="prod")[1]["scriptName"]
    assert (dev, prod) == ("flagedge-dev", "flagedge-prod")
    assert run_program({"scriptName": "flags-edge"})[1]["scriptName"] == "flags-edge"


def test_a_custom_domain_or_a_route():
    mocks, exports = run_program(
        {"customDomain": "flags.example.com", "zoneId": "z1", "workersDev": "false"}
    )
    domain = mocks.one("WorkersCustomDomain").inputs
    assert (domain["hostname"], domain["service"], domain["zoneId"]) == (
        "flags.example.com",
        "flagedge-dev",
        "z1",
    )
    assert mocks.one("WorkersScriptSubdomain").inputs["enabled"] is False
    assert exports["url"] == "https://flags.example.com"
    mocks, exports = run_program({"route": "example.com/flags/*", "zoneId": "z1"})
    route = mocks.one("WorkersRoute").inputs
    assert (route["pattern"], route["script"]) == ("example.com/flags/*", "flagedge-dev")
    assert exports["url"] == "https://example.com/flags"


def test_no_cron_trigger_when_the_schedule_is_empty():
    mocks, exports = run_program({"cronSchedule": ""})
    assert mocks.of_type("WorkersCronTrigger") == [] and exports["cronSchedule"] == ""


# -- checks before any upload --------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "*/5 * * * *",
        "0 3 * * MON-FRI",
        "15 1,13 1 * *",
        "0 0 L * *",
        "0 12 * JAN,JUL SUN",
    ],
)
def test_valid_cron_expressions(expression):
    assert validate_cron(expression) == expression


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "hello", "*/x * * * *", "* * * 13 *"],
)
def test_invalid_cron_expressions(expression):
    with pytest.raises(ValueError):
        validate_cron(expression)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"cronSchedule": "61 * * * *"}, "cronSchedule"),
        ({"impressionsMode": "LOUD"}, "FLAGEDGE_IMPRESSIONS_MODE"),
        ({"flagSets": "Bad Set!"}, "flag set"),
        ({"syncSubrequests": "2"}, "FLAGEDGE_SYNC_SUBREQUESTS"),
        ({"route": "example.com/*"}, "zoneId"),
    ],
)
def test_bad_config_stops_the_preview_with_a_message(override, message):
    with pytest.raises(Exception, match=message):
        run_program(override)


def test_every_provider_argument_the_program_uses_exists_in_the_installed_provider():
    """Guards against a pulumi-cloudflare upgrade that renames or drops an argument."""
    used: list[tuple[str, str]] = []
    for path in sorted((ROOT / "infra").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "cloudflare"
            ):
                used.extend(
                    (node.func.attr, kw.arg) for kw in node.keywords if kw.arg and kw.arg != "opts"
                )  # opts: Pulumi's, not the provider's
    assert used
    for name, argument in used:
        target = getattr(cloudflare, name)
        parameters = inspect.signature(
            target.__init__ if inspect.isclass(target) else target
        ).parameters
        accepted = set(parameters)
        if inspect.isclass(target) and issubclass(target, pulumi.CustomResource):
            accepted |= set(
                inspect.signature(getattr(cloudflare, name + "Args").__init__).parameters
            )
        assert argument in accepted, f"cloudflare.{name} has no argument {argument!r}"


# -- per-environment stack files -------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_files_set_only_declared_keys_and_no_secret_in_plain_text(stack):
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()).get("config") or {}
    secrets = {s.pulumi for s in SETTINGS if s.kind == "secret"}
    for key, value in config.items():
        project, _, name = key.partition(":")
        assert project == "flagedge" and name in declared, key
        if name in secrets:
            assert isinstance(value, dict) and "secure" in value, f"{key} must be a secret"
    mocks, _ = run_program({k.partition(":")[2]: str(v) for k, v in config.items()}, stack=stack)
    assert mocks.one("WorkersScript")


def test_every_deploy_setting_is_declared_once():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    keys = [d.key for d in DEPLOY_SETTINGS] + [s.pulumi for s in SETTINGS]
    assert len(keys) == len(set(keys)) == len(declared)
