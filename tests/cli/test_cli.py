"""The ``flagedge`` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def flagedge(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SPLIT_", "FLAGEDGE_"))}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "flagedge.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sync_then_eval_uses_the_bundled_example_by_default(tmp_path):
    synced = flagedge("sync", cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.startswith("sync ok: version 1 (published), flags 8")
    assert (tmp_path / ".flagedge" / "store.sqlite3").exists()

    evaluated = flagedge("eval", "bob", "beta_banner", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["treatment"] == "on"

    with_attributes = flagedge(
        "eval", "zed", "free_shipping", "--attributes", '{"cart_total": 75}', cwd=tmp_path
    )
    assert json.loads(with_attributes.stdout)["treatment"] == "on"


def test_eval_before_any_sync_prints_control_not_ready_and_exits_1(tmp_path):
    result = flagedge(
        "eval", "bob", "beta_banner", "--state", str(tmp_path / "empty"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["label"] == "not ready"
    assert "flagedge sync" in result.stderr
    assert not (tmp_path / "empty").exists()


def test_eval_rejects_attributes_that_are_not_an_object(tmp_path):
    result = flagedge("eval", "bob", "x", "--attributes", "[1]", cwd=tmp_path)
    assert result.returncode == 2
    assert "JSON object" in result.stderr


def test_sync_of_a_broken_plan_file_fails_and_keeps_the_previous_plan(tmp_path):
    assert flagedge("sync", cwd=tmp_path).returncode == 0
    broken = tmp_path / "broken.json"
    broken.write_text('{"ff": {"d": [{"name": "x"}], "s": -1, "t": 5}}')
    result = flagedge("sync", "--plan", str(broken), cwd=tmp_path)
    assert result.returncode == 1
    assert "sync failed" in result.stdout and "defaultTreatment" in result.stdout

    still = flagedge("eval", "bob", "beta_banner", cwd=tmp_path)
    assert json.loads(still.stdout)["treatment"] == "on"


def test_a_plan_file_naming_a_missing_segment_warns_and_treats_it_as_empty(tmp_path):
    plan = json.loads((ROOT / "examples" / "plan.json").read_text())
    del plan["segments"]["beta_testers"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = flagedge("sync", "--plan", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "beta_testers" in result.stderr and "empty" in result.stderr
    off = flagedge("eval", "bob", "beta_banner", cwd=tmp_path)
    assert json.loads(off.stdout)["treatment"] == "off"


def test_bad_settings_stop_with_a_message(tmp_path):
    result = flagedge("sync", cwd=tmp_path, env={"FLAGEDGE_SYNC_SUBREQUESTS": "lots"})
    assert result.returncode == 2
    assert "FLAGEDGE_SYNC_SUBREQUESTS" in result.stderr


def test_dev_serves_the_example_over_http(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "flagedge.cli", "dev", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("SPLIT_", "FLAGEDGE_"))},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    try:
        seen = []
        while not any("sync ok" in line for line in seen):  # ready once the first sync landed
            seen.append(lines.get(timeout=30))
        assert any(f"serving http://127.0.0.1:{port}" in line for line in seen)
        answer = httpx.get(
            f"http://127.0.0.1:{port}/treatment", params={"key": "bob", "flag": "beta_banner"}
        )
        assert answer.json()["treatment"] == "on"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_flagedge_sync_against_a_split_api_failing_half_its_requests(tmp_path, fake_split):
    from tests.conftest import fixture_segments, load
    from tests.sync.helpers import assert_store_equals_server, stored
    from worker.sql import SqliteSql
    from worker.store import PlanStore

    fake_split.load(load("flags/splitChanges-v1.3.json"), fixture_segments())
    fake_split.fail_rate, fake_split.seed = 0.5, 11
    fake_split.fail_kinds = ("drop", "500", "503", "truncate")
    env = {"SPLIT_SDK_KEY": fake_split.sdk_key, "SPLIT_SDK_URL": fake_split.url}
    store_file = tmp_path / ".flagedge" / "store.sqlite3"
    before: dict = {}
    outcomes = []
    for _ in range(4):
        result = flagedge("sync", cwd=tmp_path, env=env)
        store = PlanStore(SqliteSql(store_file))
        outcomes.append(result.returncode)
        if result.returncode == 0:
            assert result.stdout.startswith("sync ok")
            assert_store_equals_server(store, fake_split)
        else:
            assert result.returncode == 1
            assert result.stdout.startswith("sync failed") and "GET /" in result.stdout
            assert stored(store) == before or not before  # the previous plan, intact
            assert store.status()["sync"]["outcome"] == "failed"
        before = stored(store)
        fake_split.put_flag(
            dict(fake_split.definitions("ff")["all_feature"], killed=len(outcomes) % 2 == 0)
        )
    assert 0 in outcomes


def test_changing_the_flag_sets_rebuilds_the_plan(tmp_path):
    assert flagedge("sync", "--flag-sets", "ops", cwd=tmp_path).stdout.startswith(
        "sync ok: version 1 (published), flags 1"
    )
    assert flagedge("sync", cwd=tmp_path).stdout.startswith(
        "sync ok: version 2 (published), flags 8"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("dev", "--sync-interval", "0"),
        ("dev", "--sync-interval", "nan"),
        ("sync", "--state", ""),
        ("eval", "", "new_checkout"),
        ("eval", "\udcff", "new_checkout"),  # a non-UTF-8 byte on the command line
    ],
)
def test_bad_arguments_exit_2_with_a_message(tmp_path, args):
    result = flagedge(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_an_unusable_state_folder_or_port_is_a_message_not_a_traceback(tmp_path):
    (tmp_path / "afile").write_text("")
    result = flagedge("sync", "--state", "afile", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = flagedge("dev", "--port", str(taken.getsockname()[1]), cwd=tmp_path)
    assert busy.returncode == 2 and "address already in use" in busy.stderr


def test_a_plan_file_that_is_not_a_file_fails_the_sync(tmp_path):
    result = flagedge("sync", "--plan", "/dev/zero", cwd=tmp_path)
    assert result.returncode == 1 and "not a regular file" in result.stdout
    assert result.stdout.count("\n") == 1  # one line, not a log line and a summary


def test_a_flag_that_can_only_be_control_is_a_sync_warning(tmp_path):
    plan = json.loads((ROOT / "examples" / "plan.json").read_text())
    plan["ff"]["d"][0]["conditions"][-1]["partitions"][0]["size"] = 70  # 70 + 50
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = flagedge("sync", "--plan", str(path), cwd=tmp_path)
    assert result.returncode == 0
    assert "new_checkout" in result.stderr and "do not sum to 100" in result.stderr
