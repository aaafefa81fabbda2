"""The detail screen's sections, as Rich renderables built from `Text` only: the batch's fields,
its timeline, request counts, usage and cost, files and retry lineage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from batchtui.core.ledger import Analysis, Download, RetryLink
from batchtui.core.models import Batch, Usage
from batchtui.core.notices import results_expire_at
from batchtui.core.text import printable
from batchtui.ui.widgets.cells import compact
from batchtui.ui.widgets.clipped import clipped

Row = tuple[str, Text | str]
# Metadata values are short by the providers' own rules (OpenAI: 512 characters); one that is
# not is cut sooner than other fields, so the fields pane stays a list of fields.
METADATA_LIMIT = 300


def section(title: str, rows: Iterable[Row]) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True, min_width=18)
    grid.add_column(ratio=1)
    for label, value in rows:
        grid.add_row(Text(label), value if isinstance(value, Text) else Text(value))
    return Group(Text(title, style="bold underline"), grid, Text(""))


def when(moment: datetime | None, now: datetime) -> Text:
    if moment is None:
        return Text("-", style="dim")
    local = moment.astimezone(now.tzinfo)
    text = Text(local.strftime("%Y-%m-%d %H:%M:%S %Z").strip())
    delta = now - moment
    relative = f"{compact(delta)} ago" if delta.total_seconds() >= 0 else f"in {compact(-delta)}"
    text.append(f"  ({relative})", style="dim")
    return text


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def fields_rows(batch: Batch, colors: Mapping[str, str]) -> list[Row]:
    status = Text(batch.status.value.replace("_", " "), style=colors.get(batch.status.value, ""))
    status.append("  (provider: ", style="dim")
    status.append_text(clipped(batch.provider_status, style="dim"))
    status.append(")", style="dim")
    rows: list[Row] = [
        ("account", printable(batch.account)),
        ("provider", batch.provider.value),
        ("id", clipped(batch.id)),
        ("name", clipped(batch.name) if batch.name else "-"),
        ("status", status),
        ("model", clipped(batch.model) if batch.model else "-"),
        ("endpoint", clipped(batch.endpoint) if batch.endpoint else "-"),
    ]
    for key, value in sorted(batch.metadata.items()):
        rows.append((f"metadata.{printable(key, limit=40)}", clipped(value, METADATA_LIMIT)))
    return rows


def timeline_rows(batch: Batch, now: datetime) -> list[Row]:
    return [
        ("created", when(batch.created_at, now)),
        ("in progress", when(batch.in_progress_at, now)),
        ("finalizing", when(batch.finalizing_at, now)),
        ("cancel requested", when(batch.cancel_requested_at, now)),
        ("ended", when(batch.ended_at, now)),
        ("expires", when(batch.expires_at, now)),
        ("results expire", when(results_expire_at(batch), now)),
    ]


def counts_rows(batch: Batch) -> list[Row]:
    counts = batch.counts
    rows: list[Row] = [
        ("total", number(counts.total)),
        ("succeeded", number(counts.succeeded)),
        ("failed", number(counts.failed)),
        ("expired", number(counts.expired)),
        ("cancelled", number(counts.cancelled)),
        ("processing", number(counts.processing)),
    ]
    if not counts.live:
        rows.append(("note", Text("the provider reports counts only when the batch ends", style="dim")))
    return rows


def usage_of(batch: Batch, analysis: Analysis | None) -> Usage | None:
    if analysis is not None and analysis.usage_by_model:
        total = Usage()
        for usage in analysis.usage_by_model.values():
            total = total + usage
        return total
    return batch.usage


def cost_rows(batch: Batch, analysis: Analysis | None) -> list[Row]:
    cost = batch.cost
    rows: list[Row] = []
    if cost is None or cost.usd is None:
        rows.append(("batch price", Text("unknown", style="dim")))
    else:
        rows.append(("batch price", ("~" if cost.estimated else "") + f"${cost.usd:,.4f}"))
        if cost.standard_usd is not None:
            rows.append(("standard price", f"${cost.standard_usd:,.4f}"))
            rows.append(("savings", f"${cost.standard_usd - cost.usd:,.4f}"))
    if cost is not None and cost.reason:
        rows.append(("note", clipped(cost.reason, style="dim")))
    usage = usage_of(batch, analysis)
    if usage is not None:
        rows += [
            ("input tokens", number(usage.input)),
            ("cached input", number(usage.cached_input)),
            ("cache writes", number(usage.cache_write)),
            ("output tokens", number(usage.output)),
            ("reasoning", number(usage.reasoning)),
            ("cache share", f"{usage.cached_input / usage.input:.1%}" if usage.input else "-"),
        ]
    return rows


def files_rows(batch: Batch, downloads: Mapping[str, Download]) -> list[Row]:
    rows: list[Row] = [("input", clipped(batch.input_ref) if batch.input_ref else "-")]
    for result in batch.result_files:
        rows.append((result.kind, clipped(result.ref)))
    for kind, download in downloads.items():
        text = Text(printable(str(download.path)))
        text.append(f"  ({download.lines:,} lines)", style="dim")
        rows.append((f"fetched {kind}", text))
    if not batch.result_files:
        rows.append(("results", Text("none yet" if not batch.is_terminal else "none", style="dim")))
    return rows


def lineage_rows(parent: RetryLink | None, children: list[RetryLink], known: Mapping[tuple[str, str], Batch]) -> list[Row]:
    rows: list[Row] = []
    if parent is not None:
        rows.append(("retry of", _linked(parent.account, parent.parent_id, known, len(parent.custom_ids))))
    for child in children:
        rows.append(("retried as", _linked(child.account, child.child_id, known, len(child.custom_ids))))
    if not rows:
        rows.append(("", Text("no retries", style="dim")))
    return rows


def _linked(account: str, batch_id: str, known: Mapping[tuple[str, str], Batch], items: int) -> Text:
    text = clipped(batch_id)
    batch = known.get((account, batch_id))
    state = batch.status.value.replace("_", " ") if batch else "not seen yet"
    text.append(f"  ({items:,} requests, {state})", style="dim")
    return text
