"""What each `mutate` subcommand does, over the library API; printing goes through `render`."""

from __future__ import annotations

import argparse
import sys

from mutator import api, render
from mutator.source import write_atomically


def run(args: argparse.Namespace) -> int:
    handler = _HANDLERS[args.command]
    return handler(args)


def rules_command(args: argparse.Namespace) -> int:
    render.rules_table(api.rules_named(None))
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    script = api.Script.load(args.script, args.model)
    render.model_report(script, api.propose(script, api.rules_named(None)))
    return 0


def preview_command(args: argparse.Namespace) -> int:
    script = api.Script.load(args.script, args.model)
    candidate = api.choose(api.propose(script, api.rules_named(args.rule)), args.site)
    result = api.rewrite(script, candidate)
    render.diff(f"{candidate.rule}: {candidate.description}", result.diff, args.color)
    return 0


def apply_command(args: argparse.Namespace) -> int:
    script = api.Script.load(args.script, args.model)
    candidate = api.choose(api.propose(script, api.rules_named([args.rule])), args.site)
    result = api.rewrite(script, candidate)
    target = args.script if args.in_place else args.output
    if target is None:
        sys.stdout.write(result.source)
        return 0
    write_atomically(target, result.source)
    print(f"{candidate.rule}: {candidate.description} -> {target}", file=sys.stderr)
    return 0


_HANDLERS = {
    "rules": rules_command,
    "inspect": inspect_command,
    "preview": preview_command,
    "apply": apply_command,
}
