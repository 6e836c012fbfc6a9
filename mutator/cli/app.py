"""`mutate`: the command line, thin over `mutator.api`.

Exit codes (also in the README):
  0  success (for `tune`: the target was reached)
  1  `tune` ended without reaching the target (budget spent or nothing left to try)
  2  usage error: unknown command, flag, rule or site
  3  the script is missing, unreadable, or not valid Python (file:line:col given)
  4  no Keras model found in the script
  5  a model was found but no rule can change it
  6  a rule produced code that does not parse or compile (a bug: nothing was written)
  7  training could not run (the baseline failed, the runner is unavailable)
  8  `notify`, `tune --notify`: an email or webhook could not be delivered (a line per channel)
  9  `commit`, `tune --commit`: refused (dirty tree, script changed since the run, branch not
     ours) or the push failed (the commit then stays on its local branch)
  10 `tune` with MLflow tracking: the tracking server could not be reached (or refused the
     search) before any trial trained
  70 internal error (set MUTATOR_DEBUG=1 for the traceback)
  130 interrupted

Nothing here imports keras or tensorflow: preview, apply and inspect must stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mutator.errors import MutatorError, UsageError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized without `shutil` (argparse builds one per argument added,
    and importing shutil for its terminal size would cost every command ~3 ms)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:  # fmt: skip
        super().__init__(prog, indent_increment, max_help_position, width or _columns() - 2)


def _columns() -> int:
    """What shutil.get_terminal_size would say: $COLUMNS, else the terminal's, else 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `mutate` parser; given `command`, only that subcommand gets its arguments.

    Every subcommand is listed (so `mutate --help` and an unknown command's error are whole),
    but building every subcommand's arguments costs milliseconds that `preview` need not pay.
    """
    parser = _Parser(
        prog="mutate",
        description="Improve a Keras model by rewriting its training script, one careful change at a time.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, add_arguments) in _SUBCOMMANDS.items():
        subcommand = commands.add_parser(name, help=help_text)
        if add_arguments is not None and (command is None or name == command):
            add_arguments(subcommand)
    return parser


def _add_inspect(inspect: argparse.ArgumentParser) -> None:
    _script_args(inspect)


def _add_preview(preview: argparse.ArgumentParser) -> None:
    _script_args(preview)
    preview.add_argument("--rule", action="append", help="only this rule (repeatable)")
    preview.add_argument("--site", type=int, help="the layer index to change (see `inspect`)")
    preview.add_argument("--color", choices=("auto", "always", "never"), default="auto")


def _add_apply(apply: argparse.ArgumentParser) -> None:
    _script_args(apply)
    apply.add_argument("--rule", required=True, help="the rule to apply (see `mutate rules`)")
    apply.add_argument("--site", type=int, help="the layer index to change (see `inspect`)")
    where = apply.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, help="write the new script here")
    where.add_argument("--in-place", action="store_true", help="overwrite the script")


def _add_tune(tune: argparse.ArgumentParser) -> None:
    tune.usage = "mutate tune SCRIPT [options] [-- SCRIPT_ARGS...]"
    _script_args(tune)
    _goal_flags(tune, "stop when the metric reaches this")
    tune.add_argument("--min-improvement", type=float, help="smallest gain that counts (0.001)")
    tune.add_argument(
        "--select-on",
        choices=("test", "validation"),
        help="select on evaluate's figure (test) or on val_accuracy, evaluate reported at the end",
    )
    tune.add_argument(
        "--noise-runs",
        type=int,
        help="runs of the best with other seeds that measure the noise; 0: off (1)",
    )
    tune.add_argument(
        "--final-runs",
        type=int,
        help="at the end, train best.py this many more times with other seeds: mean and spread (0)",
    )
    tune.add_argument(
        "--noise-multiple",
        type=float,
        help="a gain must clear this many sds of the run-to-run difference (2)",
    )
    _spend_flags(tune)
    tune.add_argument(
        "--max-params",
        type=int,
        metavar="N",
        help="refuse a candidate whose model has more parameters, before it trains (none)",
    )
    tune.add_argument(
        "--max-epoch-seconds",
        metavar="S",
        help="stop and refuse a candidate whose epochs take longer, e.g. 20s (none)",
    )
    tune.add_argument("--rule", action="append", dest="rules", help="only these rules, in order")
    tune.add_argument(
        "--no-joint",
        dest="joint_changes",
        action="store_const",
        const=False,
        help="one rule per trial, even where the curves call for capacity and epochs at once",
    )
    tune.add_argument(
        "--no-join",
        dest="join_near_misses",
        action="store_const",
        const=False,
        help="never join changes that each gained inside the noise band into one",
    )
    tune.add_argument(
        "--no-guess-cap",
        dest="guess_cap",
        action="store_const",
        const=False,
        help="let a candidate cost more than the search has spent so far",
    )
    fast = tune.add_argument_group("fast trials (each on by default)")
    fast.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_const",
        const=False,
        help="train every child from scratch, not from its parent's weights",
    )
    fast.add_argument(
        "--warm-share",
        type=float,
        metavar="F",
        help="share of the epochs a widened/deepened child trains warm (0.5)",
    )
    fast.add_argument(
        "--warm-after",
        metavar="DURATION",
        help="children of a parent that trained faster than this start cold (5s)",
    )
    fast.add_argument(
        "--no-prune",
        dest="prune",
        action="store_const",
        const=False,
        help="train every candidate to its last epoch, even one that trails the best",
    )
    fast.add_argument(
        "--no-peak-stop",
        dest="peak_stop",
        action="store_const",
        const=False,
        help="train the script as given to its last epoch, even past its lowest val loss",
    )
    fast.add_argument(
        "--no-target-stop",
        dest="target_stop",
        action="store_const",
        const=False,
        help="train every script to its last epoch, even past the one that met the target",
    )
    _where_flags(tune, fast)
    tracking = tune.add_argument_group("tracking (pip install 'mutator[mlflow]')")
    tracking.add_argument(
        "--mlflow", metavar="URI", help="track the search in MLflow (default: MLFLOW_TRACKING_URI)"
    )
    tracking.add_argument(
        "--mlflow-experiment", metavar="NAME", help="the experiment (default: the script's stem)"
    )
    tracking.add_argument(
        "--mlflow-model-name", metavar="NAME", help="the registered model (the script's stem)"
    )
    after = tune.add_argument_group("afterwards (checked before the first trial trains)")
    after.add_argument(
        "--then-slim",
        action="store_true",
        help="once the target is reached, `mutate slim` best.py: the smallest model that still does",
    )
    after.add_argument(
        "--commit", action="store_true", help="commit best.py on a branch, as `mutate commit`"
    )
    after.add_argument("--branch", help="--commit: the branch (default: mutator/<script stem>)")
    after.add_argument("--push", action="store_true", help="--commit: push it (never forced)")
    after.add_argument("--remote", help="--commit --push: the remote (origin)")
    after.add_argument("--beside", action="store_true", help="--commit: as <stem>.best.py")
    after.add_argument(
        "--notify", action="store_true", help="email/webhook the outcome, as `mutate notify`"
    )


def _add_slim(slim: argparse.ArgumentParser) -> None:
    slim.usage = "mutate slim SCRIPT --target T [options] [-- SCRIPT_ARGS...]"
    slim.description = (
        "From a script that reaches the target, the smallest model (parameters, then training "
        "time) that still reaches it from scratch, twice: layers removed, widths halved, fewer "
        "epochs. The smallest script is best.py in .mutator/<stem>-slim/."
    )
    _script_args(slim)
    _goal_flags(slim, "the metric every smaller model must reach (required)")
    _spend_flags(slim)
    _where_flags(slim, slim)


def _goal_flags(parser: argparse.ArgumentParser, target_help: str) -> None:
    """What is measured and what it must reach: tune's and slim's."""
    parser.add_argument("--target", type=float, help=target_help)
    parser.add_argument("--metric", help="metric to optimise (default: evaluate's accuracy)")
    parser.add_argument("--mode", choices=("max", "min", "auto"), help="maximise or minimise")
    parser.add_argument("--metric-regex", help="read the metric from the script's output instead")


def _spend_flags(parser: argparse.ArgumentParser) -> None:
    """What a search may spend: tune's and slim's."""
    parser.add_argument("--max-trials", type=int, help="trials in all, baseline included (20)")
    parser.add_argument("--time-budget", help="stop after this long, e.g. 30m (none)")
    parser.add_argument("--trial-timeout", help="stop one trial after this long (30m)")


def _where_flags(parser: argparse.ArgumentParser, fast: argparse._ActionsContainer) -> None:
    """Where and how trials train, and the run directory: tune's and slim's."""
    parser.add_argument("--seed", type=int, help="seed every trial's random generators")
    parser.add_argument(
        "--runner", choices=("local", "docker", "ray"), help="where trials train (local)"
    )
    parser.add_argument("--retries", type=int, help="restarts of a crashed trial (1)")
    fast.add_argument(
        "--parallel", type=int, metavar="N", help="trials side by side (default: one per core)"
    )
    fast.add_argument(
        "--no-worker",
        dest="worker",
        action="store_const",
        const=False,
        help="a fresh Python per trial instead of forks of a warm worker",
    )
    parser.add_argument("--image", dest="docker_image", help="docker: the image (default: by kind)")
    parser.add_argument(
        "--cpus", dest="docker_cpus", type=float, help="docker: CPU limit per trial"
    )
    parser.add_argument("--memory", dest="docker_memory", help="docker: memory limit, e.g. 2g")
    parser.add_argument("--network", dest="docker_network", help="docker: network, e.g. none")
    parser.add_argument(
        "--keep-failed",
        dest="docker_keep_failed",
        action="store_const",
        const=True,
        help="docker: keep failed trials' containers for inspection",
    )
    ray = parser.add_argument_group("--runner ray (pip install 'mutator[ray]')")
    ray.add_argument(
        "--ray-address", metavar="HOST:PORT", help="the head node (default: a Ray on this machine)"
    )
    ray.add_argument(
        "--ray-cpus", type=float, metavar="N", help="CPUs per trial (default: the cluster's share)"
    )
    ray.add_argument("--ray-gpus", type=float, metavar="N", help="GPUs per trial (0)")
    ray.add_argument("--ray-memory", metavar="SIZE", help="memory per trial, e.g. 4g (none asked)")
    parser.add_argument("--workdir", type=Path, help="run directory (.mutator/<script>/ beside it)")
    parser.add_argument(
        "--fresh", action="store_true", help="start over; the old run is kept aside"
    )


def _add_detect(detect: argparse.ArgumentParser) -> None:
    detect.add_argument("script", type=Path)
    detect.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_images(images: argparse.ArgumentParser) -> None:
    images_commands = images.add_subparsers(
        dest="images_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    build = images_commands.add_parser("build", help="build the images through the Docker engine")
    build.add_argument(
        "--kind",
        choices=("keras", "sklearn"),
        action="append",
        help="only this image (repeatable; default: all)",
    )
    build.add_argument(
        "--base-image",
        help="FROM image (default: python:3.11-slim, or the "
        "image images/make-base-image.sh made when it exists)",
    )
    build.add_argument("--ca-cert", help="extra CA bundle for pip (default: $PIP_CERT)")
    images_commands.add_parser("list", help="the images and their sizes")


def _add_commit(commit: argparse.ArgumentParser) -> None:
    commit.description = (
        "Commit best.py in place of the script on its own branch, with a message "
        "listing each accepted change and its metric. The working tree, index and current "
        "branch are not touched. Refused (exit 9) when the tree is dirty, HEAD's script is not "
        "the one tuned, or the branch exists without HEAD in it. Never force-pushes."
    )
    commit.add_argument("script", type=Path, help="the training script that was tuned")
    commit.add_argument("--workdir", type=Path, help="run directory (.mutator/<script>/)")
    commit.add_argument("--branch", help="branch to commit on (default: mutator/<script stem>)")
    commit.add_argument("--push", action="store_true", help="push the branch (never forced)")
    commit.add_argument("--remote", default="origin", help="remote to push to (origin)")
    commit.add_argument(
        "--beside", action="store_true", help="add <stem>.best.py next to the script instead"
    )


def _add_monitor(monitor: argparse.ArgumentParser) -> None:
    when = monitor.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one look, then exit")
    when.add_argument("--interval", type=float, default=30.0, help="seconds between looks (30)")
    monitor.add_argument("--max-restarts", type=int, default=3, help="per container (3)")


def _add_hook(hook: argparse.ArgumentParser) -> None:
    hook.description = (
        "For each training script, say whether its model was found and show the "
        "change the search would try first. Other files are passed over. Never fails unless "
        "--strict is given."
    )
    hook.add_argument("files", nargs="*", type=Path, help="the staged files")
    hook.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a Keras script has no model mutator can find or change",
    )
    hook.add_argument("--no-diff", action="store_true", help="one line per script, no diff")


def _add_history(history: argparse.ArgumentParser) -> None:
    history.add_argument("script", type=Path)
    history.add_argument("--workdir", type=Path)
    history.add_argument(
        "--sort",
        choices=("trial", "size", "pace"),
        default="trial",
        help="trial order (default), or the smallest model first (size: parameters, then "
        "s/epoch) or the fastest (pace: s/epoch, then parameters); unknown last",
    )


def _add_notify(notify: argparse.ArgumentParser) -> None:
    notify.description = (
        "Send the run's outcome, the metric before and after, the accepted changes "
        "and the whole diff. The SMTP password comes only from $MUTATOR_SMTP_PASSWORD; the "
        "webhook URL may also come from $MUTATOR_WEBHOOK_URL. Flags override "
        "[tool.mutator.notify]. Exit 8 when a channel failed."
    )
    notify.add_argument("script", type=Path, help="the training script that was tuned")
    notify.add_argument("--workdir", type=Path, metavar="DIR", help="run directory")
    notify.add_argument(
        "--email", action="append", dest="email_to", metavar="ADDR", help="to (repeatable)"
    )
    notify.add_argument("--webhook", dest="webhook_url", metavar="URL", help="Slack-compatible")
    notify.add_argument("--smtp-host", metavar="HOST", help="SMTP relay")
    notify.add_argument("--smtp-port", type=int, metavar="PORT", help="587, 465 (ssl), 25 (none)")
    notify.add_argument("--smtp-security", choices=("starttls", "ssl", "none"))
    notify.add_argument("--smtp-user", metavar="USER", help="password: $MUTATOR_SMTP_PASSWORD")
    notify.add_argument("--smtp-ca-cert", metavar="PEM", help="a CA to trust for the relay")
    notify.add_argument("--from", dest="email_from", metavar="ADDR", help="sender address")
    notify.add_argument("--report-url", metavar="URL", help="the report's link, e.g. $BUILD_URL")
    notify.add_argument("--dry-run", action="store_true", help="print what would be sent")


# name -> (help, what adds its arguments); in the order `mutate --help` lists them.
_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None] | None]] = {
    "rules": ("list the mutation rules in the order the search tries them", None),
    "inspect": ("show the model mutator finds in a script", _add_inspect),
    "preview": ("show the next change as a unified diff", _add_preview),
    "apply": ("apply one rule and write the new script", _add_apply),
    "tune": ("train, mutate and retrain until the target is reached", _add_tune),
    "slim": ("the smallest model that still reaches the target, from one that does", _add_slim),
    "detect": ("which environment (cnn, ann, sklearn) a script needs", _add_detect),
    "images": ("build or list the training images", _add_images),
    "commit": (
        "commit the run's best.py on a branch (mutator/<stem>), optionally push it",
        _add_commit,
    ),
    "monitor": ("restart crashed training containers (job 6)", _add_monitor),
    "hook": ("pre-commit: preview the first change for each training script given", _add_hook),
    "history": ("the trials of a run and why each was kept", _add_history),
    "notify": ("email and/or post a webhook with how a tuning run ended", _add_notify),
}


def _script_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", type=Path, help="the training script")
    parser.add_argument("--model", help="the model's variable or builder function, when several")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        return _run(build_parser(_command_in(argv)), argv)
    except MutatorError as exc:
        print(f"mutate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mutate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if os.environ.get("MUTATOR_DEBUG"):
            raise
        print(
            f"mutate: internal error: {type(exc).__name__}: {exc} (set MUTATOR_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named (the first word that is not an option), when it is one of ours."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in _SUBCOMMANDS else None


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    # Everything after `--` belongs to the training script (`mutate tune train.py -- --lr 0.1`).
    script_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)
    args.script_args = script_args
    if args.version:
        from mutator import __version__

        print(f"mutate {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    from mutator.cli import commands

    return commands.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
