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
  70 internal error (set MUTATOR_DEBUG=1 for the traceback)
  130 interrupted

Nothing here imports keras or tensorflow: preview, apply and inspect must stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mutator.errors import MutatorError, UsageError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mutate",
        description="Improve a Keras model by rewriting its training script, one careful change at a time.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    commands.add_parser("rules", help="list the mutation rules in the order the search tries them")

    inspect = commands.add_parser("inspect", help="show the model mutator finds in a script")
    _script_args(inspect)

    preview = commands.add_parser("preview", help="show the next change as a unified diff")
    _script_args(preview)
    preview.add_argument("--rule", action="append", help="only this rule (repeatable)")
    preview.add_argument("--site", type=int, help="the layer index to change (see `inspect`)")
    preview.add_argument("--color", choices=("auto", "always", "never"), default="auto")

    apply = commands.add_parser("apply", help="apply one rule and write the new script")
    _script_args(apply)
    apply.add_argument("--rule", required=True, help="the rule to apply (see `mutate rules`)")
    apply.add_argument("--site", type=int, help="the layer index to change (see `inspect`)")
    where = apply.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, help="write the new script here")
    where.add_argument("--in-place", action="store_true", help="overwrite the script")
    return parser


def _script_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", type=Path, help="the training script")
    parser.add_argument("--model", help="the model's variable or builder function, when several")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(build_parser(), list(sys.argv[1:] if argv is None else argv))
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


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    args = parser.parse_args(argv)
    if args.version:
        from mutator import __version__

        print(f"mutate {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    from mutator import commands

    return commands.run(args)
