"""Printing for people: rich colours and tables on a terminal, plain text in pipes and Jenkins logs.

rich is imported only when it is used, so `mutate preview` into a pipe costs no more than parsing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mutator.engine.candidate import Candidate, Proposal

if TYPE_CHECKING:
    from mutator.api import Script
    from mutator.engine.model_view import Layer, ModelView
    from mutator.search.ledger import TrialRecord
    from rules import Rule


def _use_color(mode: str) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return sys.stdout.isatty()


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(highlight=False)


def diff(title: str, text: str, color: str = "auto") -> None:
    if not _use_color(color):
        sys.stdout.write(f"# {title}\n{text}")
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, force_terminal=True)
    console.print(Text(f"# {title}", style="bold"))
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in text.splitlines():
        head = line[:3] if line.startswith(("+++", "---")) else line[:1]
        style = "bold" if head in ("+++", "---") else styles.get(head, "")
        console.print(Text(line, style=style), soft_wrap=True)


def rules_table(
    rules: Sequence[Rule], title: str = "mutation rules, in the order the search tries them"
) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("rule")
    table.add_column("what it does")
    for number, rule in enumerate(rules, 1):
        table.add_row(str(number), rule.name, rule.description)
    _console().print(table)


def model_report(script: Script, proposals: Sequence[Proposal]) -> None:
    from rich.markup import escape
    from rich.table import Table

    view = script.view
    console = _console()
    console.print(
        f"[bold]{script.path}[/bold]: model [bold]{view.name}[/bold] in {view.scope}, "
        f"style {view.style}, {escape(_inputs_line(view))}"
    )
    table = Table()
    composed = any(layer.model for layer in view.layers)
    branched = _branched(view)
    columns = (
        "site",
        "layer",
        "written as",
        "arguments",
        *(("takes",) if branched else ()),
        *(("model",) if composed else ()),
    )
    for column in columns:
        table.add_column(column)
    for layer in view.layers:
        arguments = (
            ", ".join(view.code(arg).strip().rstrip(",") for arg in layer.call.args)
            if layer.call
            else "?"
        )
        written = layer.written_as
        if layer.written_base:
            written += f" (a {layer.written_base})"
        model = (layer.model or view.name,) if composed else ()
        takes = (_takes(view, layer),) if branched else ()
        table.add_row(str(layer.index), layer.kind, written, escape(arguments), *takes, *model)
    console.print(table)
    epochs = view.epochs
    console.print(f"epochs: {epochs.detail if epochs else 'no fit call found'}")
    console.print(f"optimizer: {escape(_optimizer_line(view))}", soft_wrap=True)
    batch = view.batch_size
    batch_line = "no fit call found" if batch is None else batch.detail
    if batch is not None and batch.value is not None:
        batch_line = f"{batch.value} ({batch.detail})"
    console.print(f"batch size: {escape(batch_line)}", soft_wrap=True)
    for note in view.notes:
        console.print(f"note: {note}")
    console.print("[bold]what each rule would do[/bold]")
    for proposal in proposals:
        if isinstance(proposal, Candidate):
            console.print(f"  {proposal.rule} @{proposal.site}: {proposal.description}")
        else:
            where = "" if proposal.site is None else f" @{proposal.site}"
            console.print(f"  {proposal.rule}{where}: [dim]skip: {proposal.reason}[/dim]")


def _inputs_line(view: ModelView) -> str:
    """`input shape (8, 8, 1)`, or each input of a functional model that takes several."""
    inputs = view.flow.inputs if view.flow is not None else ()
    if len(inputs) < 2:
        return f"input shape {view.input_shape or 'unknown'}"
    shown = ", ".join(f"{i.name or '?'} {i.shape or '(shape unknown)'}" for i in inputs)
    return f"inputs {shown}"


def _branched(view: ModelView) -> bool:
    """True for a functional model that is not one chain of layers."""
    flow = view.flow
    if flow is None:
        return False
    return any(
        reads != ((layer - 1,) if layer else ()) or len(flow.reads_inputs[layer]) != (layer == 0)
        for layer, reads in enumerate(flow.reads)
    )


def _takes(view: ModelView, layer: Layer) -> str:
    """What a layer of a functional model takes: layers by site, inputs by name."""
    assert view.flow is not None
    inputs = view.flow.inputs
    taken = [str(source.index) for source in view.sources(layer)]
    taken += [inputs[k].name or "input" for k in view.flow.reads_inputs[layer.index]]
    if layer.index in view.flow.unread:
        taken.append("?")
    return ", ".join(taken)


def _optimizer_line(view: ModelView) -> str:
    """`Adam, learning rate 0.001, its default (optimizer="adam" in the compile call)`."""
    from mutator.engine.training_sites import format_rate

    site = view.optimizer
    if site is None:
        return "no compile call found"
    name = site.optimizer or "unknown"
    if site.kind == "unresolved":
        return f"{name}, learning rate unknown ({site.detail})"
    if site.learning_rate is None:
        rate = "computed"
    else:
        rate = format_rate(site.learning_rate) + (", its default" if site.kind == "default" else "")
    if site.schedule is not None:
        rate += f", the start of a {site.schedule}"
    return f"{name}, learning rate {rate} ({site.detail})"


HISTORY_SORTS = ("trial", "size", "pace")


def sorted_trials(records: Sequence[TrialRecord], by: str = "trial") -> list[TrialRecord]:
    """The trials in ledger order (`trial`), or smallest model first (`size`: parameters, then
    seconds per epoch) or fastest first (`pace`: the other way round); unknown figures last."""
    if by not in HISTORY_SORTS:
        raise ValueError(f"sort by one of {', '.join(HISTORY_SORTS)}, not {by!r}")
    if by == "trial":
        return list(records)

    def figure(value: float | None) -> tuple[bool, float]:
        return value is None, value or 0.0

    def key(r: TrialRecord) -> tuple:
        size, pace = figure(r.parameters), figure(r.seconds_per_epoch)
        return (size, pace, r.id) if by == "size" else (pace, size, r.id)

    return sorted(records, key=key)


def _pace(seconds: float | None) -> str:
    """Seconds per epoch to three figures (0.0388, 12.3, 1234); blank when unknown."""
    if seconds is None:
        return ""
    return f"{seconds:.3g}" if seconds < 1000 else f"{seconds:.0f}"


def history_table(records: Sequence[TrialRecord]) -> None:
    from rich.table import Table

    table = Table(title="trials")
    judged = any(r.noise for r in records)
    columns = ("trial", "rule", "change", "metric", "decision", "best", "seconds")
    columns += ("params", "s/epoch")
    for column in (*columns, "gain vs noise") if judged else columns:
        table.add_column(
            column,
            no_wrap=column in ("metric", "decision", "params"),
            justify="right" if column in ("params", "s/epoch") else "left",
        )
    colors = {
        "accepted": "green",
        "baseline": "blue",
        "confirm": "blue",
        "noise": "blue",
        "rejected": "dim",
    }
    for r in records:
        metric = f"{r.value:.4f}" if r.value is not None else r.status
        if r.start == "warm":
            metric += " warm"  # an estimate: trained from its parent's weights
        if r.past_peak:  # the script as given, stopped: not its own value
            metric += f" @{r.past_peak['epoch']}/{r.past_peak['planned']}"
        best = f"{r.best_after:.4f}" if r.best_after is not None else ""
        cells = [str(r.id), r.rules_label or "-", r.description, metric, r.decision, best]
        cells.append(f"{r.seconds:.1f}")
        cells.append(f"{r.parameters:,}" if r.parameters is not None else "")
        cells.append(_pace(r.seconds_per_epoch))
        if judged:
            note = r.noise
            cells.append(f"{note['gain']:+.4f} / ±{note['band']:.4f}" if note else "")
        table.add_row(*cells, style=colors.get(r.decision, ""))
    _console().print(table)
    from mutator.search.report import diagnosis_lines, noise_lines

    for line in diagnosis_lines(records) + noise_lines(records):
        _console().print(line, highlight=False)

