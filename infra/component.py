"""``FlagedgeWorker``: the Worker, its Durable Object store, cron and secrets.

One component per environment (stack). Its children:

* ``<name>-script``: the ``WorkersScript``: the bundle's main module as
  ``content`` and every other module under ``files``, the ``python_workers``
  flag at a pinned compatibility date, a ``durable_object_namespace`` binding
  for the store (created by the pending migration), the secrets as
  ``secret_text`` bindings and the other settings as ``plain_text``;
* ``<name>-cron``: the ``WorkersCronTrigger`` that runs the synchronizer
  (none when the schedule is empty, as on review stacks);
* ``<name>-workers-dev``: the script's workers.dev switch;
* ``<name>-domain`` or ``<name>-route`` when a custom domain or route is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_cloudflare as cloudflare

from flagedge.bundle import STORE_CLASS, Bundle
from infra.migrations import MIGRATIONS, current_classes, pending_migrations

__all__ = ["STORE_BINDING", "FlagedgeWorker", "FlagedgeWorkerArgs"]

STORE_BINDING = "FLAG_STORE"
COMPATIBILITY_FLAGS = ["python_workers"]


@dataclass
class FlagedgeWorkerArgs:
    account_id: str
    script_name: str
    bundle: Bundle
    sdk_key: pulumi.Input[str]
    compatibility_date: str
    cron_schedule: str = "* * * * *"
    admin_token: pulumi.Input[str] | None = None
    eval_token: pulumi.Input[str] | None = None
    plain_settings: Mapping[str, str] = field(default_factory=dict)
    workers_dev: bool = True
    account_subdomain: str = ""
    custom_domain: str = ""
    route: str = ""
    zone_id: str = ""


def _secret(name: str, value: pulumi.Input[str]) -> cloudflare.WorkersScriptBindingArgs:
    return cloudflare.WorkersScriptBindingArgs(
        name=name, type="secret_text", text=pulumi.Output.secret(value)
    )


def applied_migration_tag(account_id: str, script_name: str) -> str | None:
    """The live script's migration tag, or None when it does not exist (yet)."""
    scripts = cloudflare.get_workers_scripts(account_id=account_id)
    for script in scripts.results or []:
        if script.id == script_name:
            return script.migration_tag or None
    return None


class FlagedgeWorker(pulumi.ComponentResource):
    url: pulumi.Output[str]
    script_name: pulumi.Output[str]
    cron_schedule: pulumi.Output[str]
    bundle_hash: pulumi.Output[str]

    def __init__(
        self, name: str, args: FlagedgeWorkerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flagedge:index:Worker", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bundle = args.bundle

        # Refuse before any upload: the binding and the migrations must name a class
        # the bundle defines and exports.
        if STORE_CLASS not in current_classes(MIGRATIONS):
            raise ValueError(
                f"infra/migrations.py leaves no Durable Object class {STORE_CLASS!r}; the store "
                "binding would point at nothing"
            )
        if not bundle.exports(STORE_CLASS):
            raise ValueError(f"the bundle does not define and export {STORE_CLASS!r}")
        if args.route and not args.zone_id:
            raise ValueError("a route needs zoneId")

        migrations = pending_migrations(
            applied_migration_tag(args.account_id, args.script_name), MIGRATIONS
        )

        bindings = [
            cloudflare.WorkersScriptBindingArgs(
                name=STORE_BINDING, type="durable_object_namespace", class_name=STORE_CLASS
            ),
            _secret("SPLIT_SDK_KEY", args.sdk_key),
        ]
        if args.admin_token is not None:
            bindings.append(_secret("FLAGEDGE_ADMIN_TOKEN", args.admin_token))
        if args.eval_token is not None:
            bindings.append(_secret("FLAGEDGE_EVAL_TOKEN", args.eval_token))
        bindings.extend(
            cloudflare.WorkersScriptBindingArgs(name=key, type="plain_text", text=value)
            for key, value in sorted(args.plain_settings.items())
        )

        files = {
            module.name: cloudflare.WorkersScriptFilesArgs(
                content_type=module.content_type,
                content_base64=module.content_base64,
            )
            for module in bundle.modules
            if module.name != bundle.main_module
        }
        self.script = cloudflare.WorkersScript(
            f"{name}-script",
            account_id=args.account_id,
            script_name=args.script_name,
            main_module=bundle.main_module,
            content=bundle.main.content.decode(),
            content_type="text/x-python",
            files=files,
            compatibility_date=args.compatibility_date,
            compatibility_flags=COMPATIBILITY_FLAGS,
            bindings=bindings,
            migrations=migrations,
            observability=cloudflare.WorkersScriptObservabilityArgs(enabled=True),
            opts=child,
        )
        after_script = pulumi.ResourceOptions(parent=self, depends_on=[self.script])

        if args.cron_schedule:
            self.cron = cloudflare.WorkersCronTrigger(
                f"{name}-cron",
                account_id=args.account_id,
                script_name=self.script.script_name,
                schedules=[cloudflare.WorkersCronTriggerScheduleArgs(cron=args.cron_schedule)],
                opts=after_script,
            )
        self.workers_dev = cloudflare.WorkersScriptSubdomain(
            f"{name}-workers-dev",
            account_id=args.account_id,
            script_name=self.script.script_name,
            enabled=args.workers_dev,
            previews_enabled=False,
            opts=after_script,
        )
        if args.custom_domain:
            self.domain = cloudflare.WorkersCustomDomain(
                f"{name}-domain",
                account_id=args.account_id,
                hostname=args.custom_domain,
                service=self.script.script_name,
                zone_id=args.zone_id or None,
                opts=after_script,
            )
        if args.route:
            self.route = cloudflare.WorkersRoute(
                f"{name}-route",
                zone_id=args.zone_id,
                pattern=args.route,
                script=self.script.script_name,
                opts=after_script,
            )

        self.url = pulumi.Output.from_input(self._url(args))
        self.script_name = self.script.script_name
        self.cron_schedule = pulumi.Output.from_input(args.cron_schedule)
        self.bundle_hash = pulumi.Output.from_input(bundle.hash)
        self.register_outputs(
            {
                "url": self.url,
                "script_name": self.script_name,
                "cron_schedule": self.cron_schedule,
                "bundle_hash": self.bundle_hash,
            }
        )

    @staticmethod
    def _url(args: FlagedgeWorkerArgs) -> str:
        if args.custom_domain:
            return f"https://{args.custom_domain}"
        if args.route:
            return "https://" + args.route.rstrip("*").rstrip("/")
        if args.workers_dev and args.account_subdomain:
            return f"https://{args.script_name}.{args.account_subdomain}.workers.dev"
        return ""
