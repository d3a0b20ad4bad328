"""The ``flagedge`` command.

    flagedge dev   [--plan FILE] [--host H] [--port P] [--state DIR] [--sync-interval S]
    flagedge sync  [--plan FILE] [--state DIR]
    flagedge eval  KEY FLAG [--attributes JSON] [--bucketing-key B] [--state DIR]
    flagedge bundle [--json]

The plan comes from ``--plan`` when given, else from Split's API when
``SPLIT_SDK_KEY`` is set, else from the bundled example. Every other setting
is read from the environment (see the README's settings table).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from sync import SyncReport, limits_from, make_source, run_sync
from worker.settings import Settings, SettingsError

__all__ = ["main"]

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.json"
DEFAULT_STATE = ".flagedge"

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 75  # EX_TEMPFAIL: another sync run holds the store; try again

logger = logging.getLogger("flagedge")

# Options only the command line has: (flag, default, help); the README's settings
# table lists them from here.
LOCAL_OPTIONS = (
    ("--plan", "", "A rollout plan JSON file instead of Split's API (dev, sync)."),
    ("--state", DEFAULT_STATE, "Folder of the local store (dev, sync, eval)."),
    ("--host", "127.0.0.1", "Address `flagedge dev` listens on."),
    ("--port", "8787", "Port `flagedge dev` listens on."),
    (
        "--sync-interval",
        "",
        "Seconds between syncs in `flagedge dev` (5 for a file, 60 for Split).",
    ),
)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "flag_sets", None) is not None:
        from worker.settings import normalize_flag_sets

        overrides["flag_sets"] = normalize_flag_sets(args.flag_sets.split(","))
    return Settings.load(os.environ.get, **overrides)


def _plan_file(args: argparse.Namespace, settings: Settings) -> Path | None:
    """``--plan``, else None when an SDK key is set, else the bundled example."""
    if args.plan:
        return Path(args.plan)
    if settings.sdk_key:
        return None
    return EXAMPLE_PLAN


def _describe(plan_file: Path | None, settings: Settings) -> str:
    if plan_file is None:
        return f"Split's API at {settings.sdk_url}"
    return f"plan file {plan_file}"


async def _sync_once(args: argparse.Namespace, settings: Settings) -> SyncReport:
    from flagedge.local import LocalStore, open_store

    store = LocalStore(open_store(args.state))
    plan_file = _plan_file(args, settings)
    async with httpx.AsyncClient() as client:
        source = make_source(settings, client, plan_file)
        return await run_sync(
            source, store, limits=limits_from(settings), flag_sets=settings.flag_sets
        )


def cmd_sync(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not args.verbose:  # the summary below says it all, once
        logging.getLogger("flagedge.sync").setLevel(logging.CRITICAL)
    report = asyncio.run(_sync_once(args, settings))
    print(report.line())
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.outcome == "busy":
        return EXIT_BUSY
    return 0 if report.ok else EXIT_FAILED


def cmd_eval(args: argparse.Namespace) -> int:
    from flagedge.local import open_store
    from worker.evaluator import Evaluator
    from worker.inputs import InputError, parse_flag_name, parse_json, parse_key
    from worker.plan import Plan
    from worker.results import Label

    attributes = None
    if args.attributes is not None:
        try:
            attributes = parse_json(args.attributes)
        except (ValueError, RecursionError) as error:
            print(f"flagedge eval: --attributes is not valid JSON: {error}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(attributes, dict):
            print("flagedge eval: --attributes must be a JSON object", file=sys.stderr)
            return EXIT_USAGE

    from flagedge.local import STORE_FILE

    exists = (Path(args.state) / STORE_FILE).exists()
    snapshot = open_store(args.state).read_plan(-1, -1) if exists else None
    plan = Plan.from_snapshot(snapshot) if snapshot and snapshot["version"] else None
    result = Evaluator(plan).evaluate(
        args.key, args.flag, attributes, bucketing_key=args.bucketing_key
    )
    if result.label in (Label.INVALID_KEY, Label.INVALID_ATTRIBUTES, Label.INVALID_FLAG_NAME):
        try:  # the same reason the HTTP API gives in its 400
            parse_key(args.key, args.bucketing_key)
            parse_flag_name(args.flag)
        except InputError as error:
            print(f"flagedge eval: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps({"flag": args.flag, "key": args.key, **result.as_dict()}))
    if plan is None:
        print(
            f"flagedge eval: nothing synced in {args.state}/ yet; run `flagedge sync` first",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how dev stops
        asyncio.run(_dev(args, settings))
    return 0


async def _dev(args: argparse.Namespace, settings: Settings) -> None:
    from flagedge.devserver import DevServer
    from flagedge.local import LocalStore, open_store
    from worker.api import App
    from worker.cache import PlanCache
    from worker.impressions import Outbox, Recorder, Sender

    store = LocalStore(open_store(args.state))
    cache = PlanCache(
        store,
        interval_s=settings.cache_seconds,
        max_segment_size=settings.large_segment_size,
        fallbacks=settings.fallback_treatments,
    )
    plan_file = _plan_file(args, settings)
    interval = args.sync_interval
    if interval is None:
        interval = 5.0 if plan_file is not None else 60.0

    async with httpx.AsyncClient() as client:
        source = make_source(settings, client, plan_file)
        sender = None
        if plan_file is None:  # impressions go to Split only for Split's own plan
            sender = Sender(
                client,
                settings.sdk_key,
                events_url=settings.events_url,
                telemetry_url=settings.telemetry_url,
                mode=settings.impressions_mode,
            )

        async def sync() -> SyncReport:
            report = await run_sync(
                source, store, limits=limits_from(settings), flag_sets=settings.flag_sets
            )
            if report.published:
                cache.expire()
            return report

        outbox = Outbox(Recorder(settings.impressions_mode), sender)
        server = DevServer(
            App(cache, settings=settings, outbox=outbox, sync=sync), args.host, args.port
        )
        port = await server.start()
        logger.info(
            "serving http://%s:%d with the plan from %s, re-synced every %gs",
            args.host,
            port,
            _describe(plan_file, settings),
            interval,
        )

        async def periodic() -> None:
            await sync()

        server.every(interval, periodic)
        try:
            await asyncio.Event().wait()
        finally:
            await outbox.flush()
            await server.close()


def cmd_bundle(args: argparse.Namespace) -> int:
    from flagedge.bundle import BundleError, build_bundle

    try:
        bundle = build_bundle()
    except BundleError as error:
        print(f"flagedge bundle: {error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(
            json.dumps(
                {
                    "hash": bundle.hash,
                    "main_module": bundle.main_module,
                    "modules": bundle.manifest(),
                },
                indent=2,
            )
        )
        return 0
    width = max(len(m.name) for m in bundle.modules)
    for module in bundle.modules:
        print(f"{module.name:<{width}}  {len(module.content):>8}  {module.sha256}")
    print(f"{len(bundle.modules)} modules, {bundle.size} bytes, bundle sha256 {bundle.hash}")
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _state(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("--state needs a folder")
    return Path(text).expanduser()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flagedge", description="Split feature flags at the edge: local tools."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser, plan: bool = True) -> None:
        sub.add_argument(
            "--state",
            type=_state,
            default=Path(DEFAULT_STATE),
            help="folder of the local store (default .flagedge)",
        )
        if plan:
            sub.add_argument("--plan", help="a rollout plan JSON file instead of Split's API")
            sub.add_argument("--flag-sets", help="comma-separated flag sets to sync")

    dev = commands.add_parser("dev", help="serve the HTTP API locally")
    common(dev)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8787)
    dev.add_argument(
        "--sync-interval",
        type=_seconds,
        default=None,
        help="seconds between syncs (default 5 for a plan file, 60 for Split's API)",
    )
    dev.set_defaults(run=cmd_dev)

    sync = commands.add_parser("sync", help="sync the plan into the local store once")
    common(sync)
    sync.set_defaults(run=cmd_sync)

    evaluate = commands.add_parser("eval", help="evaluate one flag from the local store")
    common(evaluate, plan=False)
    evaluate.add_argument("key")
    evaluate.add_argument("flag")
    evaluate.add_argument("--attributes", help="a JSON object of attributes")
    evaluate.add_argument("--bucketing-key")
    evaluate.set_defaults(run=cmd_eval)

    bundle = commands.add_parser(
        "bundle", help="print the module set the Pulumi program uploads (module, size, sha256)"
    )
    bundle.add_argument("--json", action="store_true", help="print it as JSON")
    bundle.set_defaults(run=cmd_bundle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `flagedge bundle | head` ends quietly, as shell tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = _parser().parse_args(argv)
    quiet = args.command in ("sync", "eval", "bundle")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else (logging.WARNING if quiet else logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.run(args))
    except SettingsError as error:
        print(f"flagedge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, sqlite3.Error) as error:  # an unusable --state, --host or --port
        where = f" (--state {args.state})" if isinstance(error, sqlite3.Error) else ""
        print(f"flagedge: {error}{where}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
