"""A batch's error breakdown: outcome x error type/code, count, one sample message per group,
plus the batch-level errors (OpenAI validation errors, a Gemini Operation error). Every string
in it came from a provider, so every cell is a `Text` of `printable()` text, cut by `clipped()`."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from batchtui.core.ledger import Analysis
from batchtui.core.models import Batch, Outcome
from batchtui.ui.widgets.clipped import clipped

SAMPLE_LIMIT = 300


def outcomes_line(analysis: Analysis) -> Text:
    text = Text("Outcomes: ", style="bold")
    outcomes = analysis.breakdown.outcomes
    parts = [(outcome, outcomes[outcome]) for outcome in Outcome if outcomes.get(outcome)]
    if not parts:
        text.append("no result lines", style="dim")
    for index, (outcome, count) in enumerate(parts):
        if index:
            text.append("  ·  ")
        style = "" if outcome is Outcome.SUCCEEDED else "bold"
        text.append(f"{outcome.value} {count:,}", style=style)
    return text


def groups_table(analysis: Analysis) -> Table:
    table = Table(expand=True, show_edge=False, header_style="bold")
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Type / code", no_wrap=True)
    table.add_column("Count", justify="right", no_wrap=True)
    table.add_column("Sample message", ratio=1)
    groups = sorted(analysis.breakdown.groups, key=lambda g: (-g.count, g.outcome.value, g.error_type or ""))
    for group in groups:
        table.add_row(
            Text(group.outcome.value),
            clipped(group.error_type) if group.error_type else Text("-"),
            Text(f"{group.count:,}"),
            clipped(group.sample_message, SAMPLE_LIMIT) if group.sample_message else Text("-"),
        )
    return table


def batch_errors(batch: Batch) -> Text | None:
    if not batch.errors:
        return None
    text = Text("Batch errors", style="bold")
    for error in batch.errors:
        text.append("\n  ")
        if error.code:
            text.append_text(clipped(error.code, style="bold"))
            text.append(" ")
        if error.line is not None:
            text.append(f"(line {error.line}) ", style="dim")
        text.append_text(clipped(error.message, SAMPLE_LIMIT))
    return text


def breakdown_renderable(batch: Batch, analysis: Analysis | None, note: str | None = None) -> RenderableType:
    parts: list[RenderableType] = []
    errors = batch_errors(batch)
    if errors is not None:
        parts.append(errors)
    if analysis is None:
        parts.append(Text(note or _why_none(batch), style="dim"))
        return Group(*parts)
    parts.append(outcomes_line(analysis))
    if analysis.breakdown.groups:
        parts.append(groups_table(analysis))
    else:
        parts.append(Text("No failed requests.", style="dim"))
    if analysis.breakdown.unparseable:
        lines = ", ".join(str(n) for n in analysis.breakdown.unparseable_lines[:5])
        parts.append(Text(f"{analysis.breakdown.unparseable:,} unparseable result line(s), e.g. line {lines}"))
    return Group(*parts)


def _why_none(batch: Batch) -> str:
    if not batch.is_terminal:
        return "The breakdown is made from the results, once the batch has ended."
    if not batch.result_files:
        return "This batch has no results to analyse."
    return "Not analysed yet."


class Breakdown(Static):
    def show(self, batch: Batch, analysis: Analysis | None, note: str | None = None) -> None:
        self.update(breakdown_renderable(batch, analysis, note))
