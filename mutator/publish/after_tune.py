"""`mutate tune --commit / --notify`: what happens once the search has ended.

Everything that can be refused is refused before the first trial trains (a bad notify setting, a
dirty tree, a branch name git rejects), so an hour of training never ends in a usage error. At
the end the commit goes first, so the notification can name the branch, and a failure of either
is one `mutate: error:` line: the run directory, best.py and the report are already written and
stay as they are.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mutator.errors import MutatorError, NotificationError, PushBackError, UsageError

if TYPE_CHECKING:  # imported for real only when used: `tune` without these flags stays lean
    from mutator.publish.notify import Delivery
    from mutator.publish.notify_config import NotifySettings
    from mutator.publish.pushback import PushBackResult


@dataclass(frozen=True)
class CommitRequest:
    """`--commit` and its options, as `mutate commit` takes them."""

    branch: str | None = None
    push: bool = False
    remote: str = "origin"
    beside: bool = False


@dataclass(frozen=True)
class FollowUp:
    """What to do after the search: a commit when `--commit`, notify settings when `--notify`."""

    script: Path
    run_dir: Path
    commit: CommitRequest | None = None
    notify_settings: NotifySettings | None = None

    @classmethod
    def prepare(
        cls,
        script: Path,
        run_dir: Path,
        commit: CommitRequest | None,
        notify: bool,
        table: dict[str, Any],
        config_path: Path | None,
    ) -> FollowUp:
        """Check now, before training, everything the end of the run will need."""
        settings = None
        if notify:
            from mutator.publish import notify as notifying

            section = table.get("notify", {})
            if not isinstance(section, dict):
                raise UsageError(f"{config_path}: notify must be a table ([tool.mutator.notify])")
            settings = notifying.notify_settings(
                section,
                {},
                str(config_path or "config"),
                base_dir=config_path.parent if config_path else None,
            )
            if not settings.anything_to_send:
                raise UsageError(
                    "--notify: nothing configured: set email_to and smtp_host, or webhook_url, in "
                    "[tool.mutator.notify] (pyproject.toml) or [notify] (mutator.toml), or set "
                    f"{notifying.WEBHOOK_ENV}"
                )
        if commit is not None:
            from mutator.publish import pushback

            pushback.check_ready(script, run_dir, commit.branch)
        return cls(script, run_dir, commit, settings)

    def finish(self, exit_code: int) -> int:
        """Commit, then notify; the exit code is the search's unless one of them failed."""
        failed: MutatorError | None = None
        committed: PushBackResult | None = None
        if self.commit is not None:
            try:
                committed = commit_and_say(self.script, self.run_dir, self.commit)
            except PushBackError as exc:
                _error(str(exc))
                failed = exc
        if self.notify_settings is not None and not self._notify(self.notify_settings, committed):
            failed = failed or NotificationError()
        return failed.exit_code if failed is not None else exit_code

    def notify_failure(self) -> None:
        """The search itself failed (e.g. the baseline crashed): still tell the people waiting.

        Nothing is sent when it failed before any trial (a locked run, no Docker engine): the
        command's own error line says all there is, and there is no run to summarise.
        """
        from mutator.search.ledger import Ledger

        if self.notify_settings is not None and Ledger(self.run_dir).records():
            self._notify(self.notify_settings, None)

    def _notify(self, settings: NotifySettings, committed: PushBackResult | None) -> bool:
        from mutator.publish import notify
        from mutator.publish.gitrepo import redact
        from mutator.publish.run_summary import summarise_run

        summary = summarise_run(self.run_dir, settings.report_url)
        if committed is not None and committed.branch and committed.commit:
            pushed_to = redact(committed.remote or "") if committed.pushed else None
            summary = summary.with_commit(committed.branch, committed.commit, pushed_to)
        return say_deliveries(notify.send(summary, settings))


def say_deliveries(deliveries: list[Delivery]) -> bool:
    """A line per channel, failures on stderr as errors; True when every channel delivered."""
    for delivery in deliveries:
        if delivery.ok:
            print(delivery.line())
        else:
            _error(delivery.line())
    return all(d.ok for d in deliveries)


def commit_and_say(script: Path, run_dir: Path, request: CommitRequest) -> PushBackResult:
    """`mutate commit` and `tune --commit`: commit best.py, print what was done, return it."""
    from mutator.publish import pushback

    result = pushback.commit_best(
        script,
        run_dir,
        branch=request.branch,
        push=request.push,
        remote=request.remote,
        beside=request.beside,
    )
    for line in pushback.describe(result):
        print(line)
    return result


def _error(text: str) -> None:
    print(f"mutate: error: {text}", file=sys.stderr, flush=True)
