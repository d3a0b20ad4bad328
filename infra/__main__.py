"""flagedge's Pulumi program: one Worker per stack (environment)."""

import pulumi

from flagedge.bundle import build_bundle
from infra.component import FlagedgeWorker
from infra.config import args_from_config

worker = FlagedgeWorker("flagedge", args_from_config(pulumi.Config(), build_bundle()))

pulumi.export("url", worker.url)
pulumi.export("scriptName", worker.script_name)
pulumi.export("cronSchedule", worker.cron_schedule)
pulumi.export("bundleHash", worker.bundle_hash)
