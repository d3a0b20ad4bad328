"""The Pulumi program under mocks: the Worker, its store, cron and secrets."""

from __future__ import annotations

import pytest

from flagedge.bundle import build_bundle
from tests.infra.mocks import is_secret, run_program, unwrap


@pytest.fixture(scope="module")
def first_deploy():
    return run_program()


def test_script_uploads_the_bundle_as_python_modules(first_deploy):
    mocks, _ = first_deploy
    script = mocks.one("WorkersScript").inputs
    bundle = build_bundle()
    assert script["mainModule"] == "main.py"
    assert script["contentType"] == "text/x-python"
    assert script["content"] == bundle.main.content.decode()
    files = script["files"]
    assert set(files) == {m.name for m in bundle.modules} - {"main.py"}
    assert files["worker/entry.py"]["contentType"] == "text/x-python"
    assert files["sync/runner.py"]["contentType"] == "text/x-python"
    for module in bundle.modules:
        if module.name != "main.py":
            assert files[module.name]["contentBase64"] == module.content_base64


def test_script_runs_python_workers_at_the_pinned_date(first_deploy):
    mocks, _ = first_deploy
    script = mocks.one("WorkersScript").inputs
    assert script["compatibilityFlags"] == ["python_workers"]
    assert script["compatibilityDate"] == "2026-06-01"


def test_store_is_a_durable_object_binding_created_by_a_sqlite_migration(first_deploy):
    mocks, _ = first_deploy
    script = mocks.one("WorkersScript").inputs
    bindings = {b["name"]: b for b in unwrap(script["bindings"])}
    assert bindings["FLAG_STORE"] == {
        "name": "FLAG_STORE",
        "type": "durable_object_namespace",
        "className": "FlagStore",
    }
    assert script["migrations"] == {"newTag": "v1", "newSqliteClasses": ["FlagStore"]}


def test_sdk_key_is_a_secret_text_binding_and_stays_secret(first_deploy):
    mocks, _ = first_deploy
    script = mocks.one("WorkersScript").inputs
    assert is_secret(script["bindings"]), "bindings holding the SDK key must be a secret input"
    bindings = {b["name"]: b for b in unwrap(script["bindings"])}
    assert bindings["SPLIT_SDK_KEY"] == {
        "name": "SPLIT_SDK_KEY",
        "type": "secret_text",
        "text": "sdk-key-not-real",
    }


def test_cron_trigger_runs_every_minute_by_default(first_deploy):
    mocks, _ = first_deploy
    cron = mocks.one("WorkersCronTrigger").inputs
    assert cron["schedules"] == [{"cron": "* * * * *"}]
    assert cron["scriptName"] == mocks.one("WorkersScript").inputs["scriptName"]


def test_cron_schedule_comes_from_config():
    mocks, _ = run_program({"cronSchedule": "*/5 * * * *"})
    assert mocks.one("WorkersCronTrigger").inputs["schedules"] == [{"cron": "*/5 * * * *"}]
