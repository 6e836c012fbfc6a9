"""Errors a user can act on, each with the exit code the CLI returns for it.

Every failure the CLI reports is one of these: one line on stderr, a documented code, no traceback.
"""

from __future__ import annotations


class MutatorError(Exception):
    """Base of every expected failure; `exit_code` is what `mutate` exits with."""

    exit_code = 1


class InputFileError(MutatorError):
    """The script is missing, unreadable, or not Python text."""

    exit_code = 3


class ScriptSyntaxError(InputFileError):
    """The script does not parse; the message carries file:line:col."""


class ModelNotFoundError(MutatorError):
    """No Keras model could be located in the script (the message says what was looked for)."""

    exit_code = 4


class NothingToChangeError(MutatorError):
    """A model was found but no rule can change it (the message says why, per rule)."""

    exit_code = 5


class RewriteError(MutatorError):
    """A rule produced code that does not parse or compile; nothing was written."""

    exit_code = 6


class UsageError(MutatorError):
    """A flag or configuration value is wrong (unknown rule, site, setting)."""

    exit_code = 2


class NotificationError(MutatorError):
    """An email or webhook could not be delivered; the tuning results on disk are untouched."""

    exit_code = 8


class PushBackError(MutatorError):
    """The best script could not be committed or pushed (dirty tree, not a repository, rejected
    push); nothing was committed, or the commit stays on its local branch."""

    exit_code = 9


class TrackingError(MutatorError):
    """The MLflow tracking server could not be reached, or refused the search, before any trial
    trained (`mutate tune` with MLFLOW_TRACKING_URI or --mlflow); nothing was trained."""

    exit_code = 10
