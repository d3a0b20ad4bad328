"""The README, Pulumi.yaml and the settings registries name the same things."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from infra.config import declared_config, settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_settings_table_is_the_registry():
    assert settings_table() in README, "regenerate the table: infra.config.settings_table()"


def test_pulumi_yaml_declares_every_setting_with_its_default():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert declared == declared_config()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block[1].splitlines()]
    assert commands[:2] == ["./scripts/dev", "./scripts/test"]
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()
