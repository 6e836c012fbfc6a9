"""The report a person would rather read than a ledger: a chart of the metric per trial, the table
of decisions, and each accepted change as a diff. Written atomically beside the ledger."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

from mutator.engine.source import write_atomically
from mutator.search import pareto
from mutator.search.ledger import TrialRecord, final_best
from mutator.training import peak

CHART = "metrics.png"
REPORT = "report.html"


def write_chart(records: Sequence[TrialRecord], target: float | None, path: Path) -> bool:
    """Metric per trial (accepted, rejected, failed) and the best so far; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    ids = [r.id for r in records]
    best = [r.best_after for r in records]
    axes.step(ids, best, where="post", color="#1f77b4", label="best so far")
    groups = {
        "accepted": ("#2ca02c", "o"),
        "baseline": ("#1f77b4", "s"),
        "rejected": ("#999999", "o"),
        "confirm": ("#9467bd", "D"),
        "noise": ("#17becf", "^"),
        "final": ("#17becf", "v"),
    }
    for decision, (color, marker) in groups.items():
        chosen = [r for r in records if r.decision == decision and r.value is not None]
        if chosen:
            axes.scatter(
                [r.id for r in chosen],
                [r.value for r in chosen],
                color=color,
                marker=marker,
                label=decision,
                zorder=3,
            )
    failed = [r for r in records if r.value is None]
    low = min((v for v in best if v is not None), default=0.0)
    if failed:
        axes.scatter(
            [r.id for r in failed],
            [low] * len(failed),
            color="#d62728",
            marker="x",
            label="failed",
            zorder=3,
        )
    if target is not None:
        axes.axhline(target, color="#d62728", linestyle="--", linewidth=1, label=f"target {target}")
    axes.set_xlabel("trial")
    axes.set_ylabel("metric")
    axes.set_xticks(ids)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    plt.close(figure)
    os.replace(tmp, path)
    return True


def write_report(
    run_dir: Path,
    script: str,
    records: Sequence[TrialRecord],
    target: float | None,
    outcome: str,
    tracked: str | None = None,
    mode: str = "max",
) -> Path:
    """report.html; `tracked`: where the search is tracked (an MLflow run's page), linked;
    `mode`: which way the metric is better (for the Pareto front)."""
    has_chart = write_chart(records, target, run_dir / CHART)
    rows = "\n".join(
        f"<tr class='{r.decision}'><td>{r.id}</td><td>{html.escape(r.rules_label or r.decision)}</td>"
        f"<td>{html.escape(r.description)}</td><td>{_start(r)}</td><td>{_metric(r)}</td>"
        f"<td>{r.decision}</td><td>{r.seconds:.1f}</td></tr>"
        for r in records
    )
    accepted = (
        "\n".join(
            f"<h3>Trial {r.id}: {html.escape(r.description)} &rarr; {_metric(r)}</h3>"
            f"<pre class='diff'>{_diff_html(r.diff)}</pre>"
            for r in records
            if r.decision == "accepted"
        )
        or "<p>No change was accepted.</p>"
    )
    chart = f"<img src='{CHART}' alt='metric per trial'>" if has_chart else ""
    readings = "".join(f"<li>{html.escape(line)}</li>" for line in diagnosis_lines(records))
    if readings:
        chart += f"<h2>What the curves said</h2><ul>{readings}</ul>"
    noted = "".join(f"<li>{html.escape(line)}</li>" for line in noise_lines(records))
    if noted:
        chart += f"<h2>Gains against the noise</h2><ul>{noted}</ul>"
    chart += _pareto_html(records, target, mode, run_dir)
    outcome_html = html.escape(outcome).replace("\n", "<br>")
    if tracked:
        href = html.escape(tracked, quote=True)
        shown = f"<a href='{href}'>{html.escape(tracked)}</a>" if "://" in tracked else href
        outcome_html += f"<br>Tracked in MLflow: {shown}"
    page = _PAGE.format(
        script=html.escape(script),
        outcome=outcome_html,
        chart=chart,
        rows=rows,
        accepted=accepted,
    )
    path = run_dir / REPORT
    write_atomically(path, page)
    return path


def _pareto_html(
    records: Sequence[TrialRecord], target: float | None, mode: str, run_dir: Path
) -> str:
    """The Pareto front of metric against parameters: its chart and its trials, the chosen
    script marked; "" when fewer than two trials were counted."""
    found = pareto.points(records, pareto.parameters)
    if len(found) < 2:
        (run_dir / pareto.CHART).unlink(missing_ok=True)
        return ""
    best = final_best(list(records))
    chosen = best.record.id if best is not None else None
    drawn = pareto.write_chart(records, chosen, target, mode, run_dir / pareto.CHART)
    rows = "".join(
        f"<tr><td>{p.record.id}{' (chosen)' if p.record.id == chosen else ''}</td>"
        f"<td>{html.escape(p.record.description)}</td><td>{p.cost:,.0f}</td>"
        f"<td>{_pace(p.record)}</td><td>{p.value:.4f}</td></tr>"
        for p in pareto.front(found, mode)
    )
    image = f"<img src='{pareto.CHART}' alt='metric against size'>" if drawn else ""
    return (
        "<h2>Size against metric: the Pareto front</h2>"
        "<p>The trials no other trial beats on both the metric and the parameters (or the "
        "training seconds).</p>"
        f"{image}<table><tr><th>#</th><th>change</th><th>parameters</th><th>s/epoch</th>"
        f"<th>metric</th></tr>{rows}</table>"
    )


def _pace(record: TrialRecord) -> str:
    return f"{record.seconds_per_epoch:.3f}" if record.seconds_per_epoch is not None else ""


def _start(record: TrialRecord) -> str:
    """warm (an estimate: from the parent's weights) or cold, with what the start did."""
    title = html.escape(record.start_reason or "", quote=True)
    label = "warm (estimate)" if record.start == "warm" else "cold"
    return f"<span title='{title}'>{label}</span>"


def _metric(record: TrialRecord) -> str:
    if record.value is None:
        return html.escape(record.status)
    at = f" ({peak.where(record.past_peak)})" if record.past_peak else ""
    return f"{record.value:.4f}{at}"


def _diff_html(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        css = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "")
        if line.startswith(("+++", "---")):
            css = "file"
        lines.append(f"<span class='{css}'>{html.escape(line)}</span>")
    return "\n".join(lines)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>mutator: {script}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; }}
tr.accepted td {{ background: #eaf7ea; }} tr.rejected td {{ color: #777; }}
pre.diff {{ background: #f6f8fa; padding: .8rem; overflow-x: auto; }}
.add {{ color: #22863a; }} .del {{ color: #b31d28; }} .hunk {{ color: #6f42c1; }}
.file {{ font-weight: bold; }}
</style></head><body>
<h1>mutator: {script}</h1>
<p>{outcome}</p>
{chart}
<h2>Trials</h2>
<table><tr><th>#</th><th>rule</th><th>change</th><th>start</th><th>metric</th><th>decision</th><th>seconds</th></tr>
{rows}
</table>
<h2>Accepted changes</h2>
{accepted}
</body></html>
"""


def noise_lines(records: Sequence[TrialRecord]) -> list[str]:
    """The runs that measured the noise, and each kept or rechecked change's gain against it."""
    lines = [
        f"trial {r.id}: the script again with its seeds moved by {r.seed_offset}: "
        + (f"{r.value:.4f}" if r.value is not None else r.status)
        for r in records
        if r.decision == "noise"
    ]
    for r in records:
        note = r.noise
        if note and (r.decision == "accepted" or note.get("verdict") in ("recheck", "refuse")):
            if note.get("verdict") == "refuse" and note.get("gain", 0) <= 0:
                continue
            lines.append(
                f"trial {r.id} ({r.rules_label}) {r.decision}: gain {note['gain']:+.4f} "
                f"against a noise band of ±{note['band']:.4f} (sd {note['sd']:.4f}): {note['why']}"
            )
    return lines


def diagnosis_lines(records: Sequence[TrialRecord]) -> list[str]:
    """One line per round: what the best's curves said, which ordered the round's rules."""
    lines, seen = [], set()
    for r in records:
        if r.diagnosis and r.round not in seen:
            seen.add(r.round)
            lines.append(f"round {r.round} (trial {r.id}...): {r.diagnosis}")
    return lines
