"""The words of a notification: email subject and bodies, and the Slack-compatible webhook JSON.

Pure functions of a `RunSummary`, so `--dry-run` shows exactly what would be sent.
"""

from __future__ import annotations

import html
from typing import Any

from mutator.publish.run_summary import FAILED, RunSummary, fmt


def subject(summary: RunSummary) -> str:
    """`mutate: train.py target reached 0.3278 -> 0.9722`: the outcome fits in an inbox line."""
    return f"mutate: {summary.script} {_outcome(summary)}"


def _outcome(summary: RunSummary) -> str:
    if summary.outcome == FAILED:
        return f"failed: {summary.failure}"
    return f"{summary.headline} {summary.change}"


def _facts(summary: RunSummary) -> list[tuple[str, str]]:
    metric = (
        f"{summary.metric or 'metric'} ({'higher' if summary.mode == 'max' else 'lower'} is better)"
    )
    facts = [("outcome", summary.headline if summary.outcome != FAILED else "failed")]
    if summary.outcome == FAILED:
        facts.append(("why", summary.failure or "unknown"))
    else:
        facts += [
            ("metric", metric),
            ("before", f"{fmt(summary.before)} (baseline)"),
            ("after", f"{fmt(summary.after)} (trial {summary.best_trial})"),
        ]
    facts += [
        ("target", "none" if summary.target is None else str(summary.target)),
        (
            "trials",
            f"{summary.trials} ({len(summary.accepted)} accepted), {_duration(summary.seconds)}",
        ),
        ("report", summary.report),
    ]
    if summary.best_script:
        facts.append(("best script", summary.best_script))
    if summary.committed:
        facts.append(("committed", summary.committed))
    return facts


def text_body(summary: RunSummary) -> str:
    lines = [f"mutate tune {summary.script}: {_outcome(summary)}", ""]
    lines += [f"{name:<12} {value}" for name, value in _facts(summary)]
    lines += summary.selection
    lines += [summary.spread] if summary.spread else []
    if summary.accepted:
        lines += ["", "Accepted changes"]
        lines += [
            f"  trial {c.trial:<4} {c.rule:<16} {fmt(c.value)}  {c.description}"
            + (f" ({c.against_noise})" if c.against_noise else "")
            for c in summary.accepted
        ]
    elif summary.outcome != FAILED:
        lines += ["", "No change was accepted: best.py is the script as given."]
    if summary.diff:
        lines += ["", f"The whole change ({summary.script} -> best.py)", ""]
        return "\n".join(lines) + "\n" + summary.diff
    return "\n".join(lines) + "\n"


def html_body(summary: RunSummary) -> str:
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in _facts(summary)
    )
    parts = [f"<h3>{html.escape(subject(summary))}</h3>", f"<table>{rows}</table>"]
    parts += [
        f"<p>{html.escape(line)}</p>" for line in [*summary.selection, summary.spread] if line
    ]
    if summary.accepted:
        items = "".join(
            f"<tr><td>{c.trial}</td><td><code>{html.escape(c.rule)}</code></td>"
            f"<td>{fmt(c.value)}</td><td>{html.escape(c.description)}"
            f"{html.escape(f' ({c.against_noise})' if c.against_noise else '')}</td></tr>"
            for c in summary.accepted
        )
        parts.append(
            "<h4>Accepted changes</h4><table><tr><th>trial</th><th>rule</th><th>metric</th>"
            f"<th>change</th></tr>{items}</table>"
        )
    if summary.diff:
        parts.append(f"<h4>The whole change</h4><pre>{_html_diff(summary.diff)}</pre>")
    return f"<html><body>{''.join(parts)}</body></html>\n"


def _html_diff(diff: str) -> str:
    colours = {"+": "#22863a", "-": "#b31d28", "@": "#6f42c1"}
    out = []
    for line in diff.splitlines():
        colour = colours.get(line[:1]) if not line.startswith(("+++", "---")) else None
        text = html.escape(line)
        out.append(f"<span style='color:{colour}'>{text}</span>" if colour else text)
    return "\n".join(out)


def slack_text(summary: RunSummary) -> str:
    """Slack mrkdwn: a few lines that read well in a channel; the details are in `mutator`."""
    icon = {"reached": ":white_check_mark:", FAILED: ":x:"}.get(summary.outcome, ":warning:")
    if summary.outcome == FAILED:
        first = f"{icon} *mutate* `{summary.script}` failed: {summary.failure}"
    else:
        target = "" if summary.target is None else f" (target {summary.target})"
        first = (
            f"{icon} *mutate* `{summary.script}`: {summary.headline}: "
            f"*{summary.change}*{target}, {summary.trials} trial(s)"
        )
    lines = [first]
    if summary.accepted:
        changes = ", ".join(f"`{c.rule}` ({fmt(c.value)})" for c in summary.accepted)
        lines.append(f"Accepted: {changes}")
    if summary.committed:
        lines.append(f"Committed: `{summary.committed}`")
    report = summary.report
    if report.startswith(("http://", "https://")):
        lines.append(f"Report: <{report}|report>")
    else:
        lines.append(f"Report: `{report}`")
    return "\n".join(lines)


def webhook_payload(summary: RunSummary) -> dict[str, Any]:
    return {"text": slack_text(summary), "mutator": summary.as_dict()}


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"
