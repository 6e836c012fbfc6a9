"""What each `mutate` subcommand does, over the library API; printing goes through `render`.

The engine (libcst, the rules) is imported by the commands that use it, not here: `tune`
starts its warm worker importing TensorFlow before it reads the script (`tune_command`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mutator.errors import ModelNotFoundError, MutatorError, UsageError

if TYPE_CHECKING:  # after_tune is imported by the commands that use it: preview stays light
    from pathlib import Path

    from mutator.publish.after_tune import CommitRequest
    from mutator.search.config import TuneSettings
    from mutator.search.hillclimb import Reporter
    from mutator.search.slim import SlimOutcome
    from mutator.training.runner import Runner


def run(args: argparse.Namespace) -> int:
    handler = _HANDLERS[args.command]
    return handler(args)


def rules_command(args: argparse.Namespace) -> int:
    from mutator import api
    from mutator.cli import render

    render.rules_table(api.rules_named(None))
    from rules import SHRINK_ORDER

    render.rules_table(
        api.rules_named(SHRINK_ORDER), "shrinking rules, in the order `mutate slim` proposes them"
    )
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    from mutator import api
    from mutator.cli import render

    script = api.Script.load(args.script, args.model)
    render.model_report(script, api.propose(script, api.rules_named(None)))
    return 0


def preview_command(args: argparse.Namespace) -> int:
    from mutator import api
    from mutator.cli import render

    script = api.Script.load(args.script, args.model)
    candidate = api.first_candidate(script, args.rule, site=args.site)
    result = api.rewrite(script, candidate)
    render.diff(f"{candidate.rule}: {candidate.description}", result.diff, args.color)
    return 0


def apply_command(args: argparse.Namespace) -> int:
    from mutator import api
    from mutator.engine.source import write_atomically

    script = api.Script.load(args.script, args.model)
    candidate = api.first_candidate(script, [args.rule], site=args.site)
    result = api.rewrite(script, candidate)
    target = args.script if args.in_place else args.output
    if target is None:
        sys.stdout.write(result.source)
        return 0
    write_atomically(target, result.source)
    print(f"{candidate.rule}: {candidate.description} -> {target}", file=sys.stderr)
    return 0


def tune_command(args: argparse.Namespace) -> int:
    from mutator.search import config, runners

    config_path, table = config.find_config(args.script)
    settings = config.settings_from(table, setting_flags(args), str(config_path or "config"))
    # A local warm worker starts importing TensorFlow now (3-4 s), before the engine is
    # imported and the script read and checked (0.3 s): the first trial starts that much
    # sooner. Other runners start in `tune`.
    local = settings.runner.name == "local"
    runner = runners.make_runner(settings, args.script) if local else None
    try:
        from mutator import api
        from mutator.cli import progress
        from mutator.publish.after_tune import FollowUp
        from mutator.search import tune

        api.check_rule_names(settings.climb.rules, settings.climb.rule_settings)
        follow_up = FollowUp.prepare(
            args.script,
            tune.run_dir_for(args.script, args.workdir),
            _commit_request(args),
            args.notify,
            table,
            config_path,
        )
        from mutator.publish import tracking

        tracker = tracking.tracker_for(args.script, settings)  # refused before any trial trains
        reporter = progress.reporter_for()
        try:
            outcome = tune.tune(
                args.script,
                settings,
                reporter,
                args.workdir,
                args.fresh,
                args.model,
                runner=runner,
                tracker=tracker,
            )
        except MutatorError:
            follow_up.notify_failure()
            raise
        reporter.message(tune.summarise(outcome, settings))
        reporter.message(f"best script: {outcome.run_dir / 'best.py'}")
        reporter.message(f"report: {outcome.run_dir / 'report.html'}")
        if args.then_slim and outcome.reached:
            _slim_after_tune(args, settings, outcome.run_dir, reporter, runner)
    finally:
        if runner is not None:
            runner.close()
    return follow_up.finish(0 if outcome.reached or settings.goal.target is None else 1)


def _slim_after_tune(
    args: argparse.Namespace,
    settings: TuneSettings,
    run_dir: Path,
    reporter: Reporter,
    runner: Runner | None,
) -> None:
    """`tune --then-slim`: slim the run's best.py under the script's own name (its imports
    and paths still work), in `slim/` inside the run directory, on tune's warm worker."""
    from mutator.search import slim

    reporter.message("then slim: the smallest model that still reaches the target")
    outcome = slim.slim(
        args.script,
        settings,
        reporter,
        run_dir / "slim",
        args.fresh,
        args.model,
        runner=runner,
        source=(run_dir / "best.py").read_text(encoding="utf-8"),
    )
    _say_slim(outcome, settings, reporter)


def slim_command(args: argparse.Namespace) -> int:
    from mutator.search import config, runners

    config_path, table = config.find_config(args.script)
    settings = config.settings_from(table, setting_flags(args), str(config_path or "config"))
    if settings.goal.target is None:
        raise UsageError("slim needs --target: the metric every smaller model must reach")
    # as in `tune_command`: a local warm worker starts importing before the engine is
    local = settings.runner.name == "local"
    runner = runners.make_runner(settings, args.script) if local else None
    try:
        from mutator.cli import progress
        from mutator.search import slim

        reporter = progress.reporter_for()
        outcome = slim.slim(
            args.script, settings, reporter, args.workdir, args.fresh, args.model, runner=runner
        )
    finally:
        if runner is not None:
            runner.close()
    _say_slim(outcome, settings, reporter)
    return 0


def _say_slim(outcome: SlimOutcome, settings: TuneSettings, reporter: Reporter) -> None:
    from mutator.search import slim

    reporter.message(slim.summarise(outcome, settings.goal.target or 0.0))
    reporter.message(f"smallest script: {outcome.run_dir / 'best.py'}")
    reporter.message(f"report: {outcome.run_dir / 'report.html'}")


def setting_flags(args: argparse.Namespace) -> dict[str, object]:
    """The settings the flags gave, by flat key: each setting's flag has its key as `dest`
    (`config.FLAT_KEYS`); None, or nothing after `--`, means not given."""
    from mutator.search import config

    given = {key: getattr(args, key) for key in config.FLAT_KEYS if hasattr(args, key)}
    given["script_args"] = list(args.script_args) or None
    return given


def _commit_request(args: argparse.Namespace) -> CommitRequest | None:
    """`--commit` with its options; the options alone are a usage error, not silently ignored."""
    from mutator.publish.after_tune import CommitRequest

    options = {"--branch": args.branch, "--push": args.push, "--remote": args.remote}
    options["--beside"] = args.beside
    if not args.commit:
        given = [flag for flag, value in options.items() if value]
        if given:
            raise UsageError(
                f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --commit"
            )
        return None
    return CommitRequest(args.branch, args.push, args.remote or "origin", args.beside)


def history_command(args: argparse.Namespace) -> int:
    from mutator.cli import render
    from mutator.search import tune
    from mutator.search.ledger import Ledger

    ledger = Ledger(tune.run_dir_for(args.script, args.workdir))
    records = ledger.records()
    if not records:
        raise UsageError(f"no trials recorded in {ledger.root}; run `mutate tune {args.script}`")
    render.history_table(render.sorted_trials(records, args.sort))
    from mutator.publish.tracking import TrackedRun

    tracked = TrackedRun.read(ledger.root)
    if tracked is not None:
        print(f"MLflow: {tracked.link}")
    return 0


def notify_command(args: argparse.Namespace) -> int:
    """Exit 0 when every channel delivered, 8 when one failed, 2 when none is configured."""
    from mutator.errors import NotificationError
    from mutator.publish import notify
    from mutator.publish.run_summary import summarise_run
    from mutator.search import config, tune
    from mutator.search.ledger import Ledger

    config_path, table = config.find_config(args.script)
    section = table.get("notify", {})
    if not isinstance(section, dict):
        raise UsageError(f"{config_path}: notify must be a table ([tool.mutator.notify])")
    settings = notify.notify_settings(
        section,
        {name: getattr(args, name) for name in notify.FLAGS},
        str(config_path or "config"),
        base_dir=config_path.parent if config_path else None,
    )
    run_dir = tune.run_dir_for(args.script, args.workdir)
    if not Ledger(run_dir).records():
        raise UsageError(f"no trials recorded in {run_dir}; run `mutate tune {args.script}` first")
    summary = summarise_run(run_dir, settings.report_url)
    if args.dry_run:
        sys.stdout.write(notify.preview(summary, settings))
        return 0
    if not settings.anything_to_send:
        raise UsageError(notify.NOTHING_CONFIGURED)
    from mutator.publish.after_tune import say_deliveries

    delivered = say_deliveries(notify.send(summary, settings))
    return 0 if delivered else NotificationError.exit_code


def commit_command(args: argparse.Namespace) -> int:
    """Exit 0 when committed or nothing to commit, 9 when refused or the push failed."""
    from mutator.publish.after_tune import CommitRequest, commit_and_say
    from mutator.search import tune

    request = CommitRequest(args.branch, args.push, args.remote, args.beside)
    commit_and_say(args.script, tune.run_dir_for(args.script, args.workdir), request)
    return 0


def hook_command(args: argparse.Namespace) -> int:
    from mutator.cli import hook

    return hook.run(args.files, strict=args.strict, show_diff=not args.no_diff)


def detect_command(args: argparse.Namespace) -> int:
    """Exit 0 with the kind and image; exit 4 when the script is none of the kinds (reason given)."""
    import json

    from mutator.containers import detect
    from mutator.search import config

    _, table = config.find_config(args.script)
    images = table.get("images", {}) if isinstance(table.get("images"), dict) else {}
    result = detect.detect(args.script, images)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(
            f"kind: {result.kind or 'unknown'}\nimage: {result.image or '-'}\nreason: {result.reason}"
        )
    return 0 if result.kind else ModelNotFoundError.exit_code


LOCAL_BASE_IMAGE = "mutator-base:bookworm-py311"  # what images/make-base-image.sh makes


def images_command(args: argparse.Namespace) -> int:
    from mutator.containers import images

    client = images.ensure_docker()
    if args.images_command == "list":
        for info in images.list_images(client):
            size = f"{info.size / 1e9:.2f} GB" if info.size else "not built"
            print(f"{info.kind:8} {info.tag:28} {size}")
        return 0
    base = args.base_image
    if base is None and _image_exists(client, LOCAL_BASE_IMAGE):
        base = LOCAL_BASE_IMAGE
    for kind in args.kind or images.KINDS:
        print(f"building {images.IMAGE_NAMES[kind]} from {base or 'python:3.11-slim'}", flush=True)
        image_id = images.build_image(
            kind, base_image=base, ca_cert=args.ca_cert, progress=_print_build_step, client=client
        )
        print(f"built {images.IMAGE_NAMES[kind]} ({image_id[:19]})", flush=True)
    return 0


def _image_exists(client, tag: str) -> bool:  # type: ignore[no-untyped-def]
    import docker

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def _print_build_step(line: str) -> None:
    if line.startswith("Step "):
        print(f"  {line[:110]}", flush=True)


def monitor_command(args: argparse.Namespace) -> int:
    from mutator.cli import progress
    from mutator.containers import monitor

    restarted = monitor.monitor(
        once=args.once,
        interval=args.interval,
        max_restarts=args.max_restarts,
        reporter=progress.PlainReporter(),
    )
    print(f"restarted {restarted} training container(s)")
    return 0


_HANDLERS = {
    "rules": rules_command,
    "inspect": inspect_command,
    "preview": preview_command,
    "apply": apply_command,
    "tune": tune_command,
    "slim": slim_command,
    "history": history_command,
    "notify": notify_command,
    "commit": commit_command,
    "hook": hook_command,
    "detect": detect_command,
    "images": images_command,
    "monitor": monitor_command,
}
