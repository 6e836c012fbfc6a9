"""The `mutate` command line: parsing, one handler per command, rendering, the pre-commit hook.

Thin over everything below it, which it may all import; nothing imports it. Only the parser is
imported up front, so that preview, apply, inspect and hook never pay for Keras or Docker.
"""

from mutator.cli.app import main

__all__ = ["main"]
