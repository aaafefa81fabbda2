"""The totals bar: batches per status, and what today and this month cost (with the savings
against standard prices). It sums the batches the table shows, so a filter answers "what did
this account cost this month"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from batchtui.core.models import Batch, Status


@dataclass(frozen=True)
class Spend:
    usd: float = 0.0
    saved: float = 0.0
    estimated: bool = False  # some of it is an estimate (a running batch)
    unpriced: int = 0  # batches in the period whose cost is unknown

    def add(self, batch: Batch) -> Spend:
        cost = batch.cost
        if cost is None or cost.usd is None:
            return Spend(self.usd, self.saved, self.estimated, self.unpriced + 1)
        saved = cost.standard_usd - cost.usd if cost.standard_usd is not None else 0.0
        return Spend(self.usd + cost.usd, self.saved + saved, self.estimated or cost.estimated, self.unpriced)


def spend(batches: Iterable[Batch], now: datetime) -> tuple[Spend, Spend]:
    """(today, this month), by creation time in the clock's own time zone: the real app's clock
    is local time; tests and snapshots pass a UTC one, so they never depend on the host."""
    today, month = Spend(), Spend()
    zone = now.tzinfo
    for batch in batches:
        created = batch.created_at.astimezone(zone)
        if (created.year, created.month) != (now.year, now.month):
            continue
        month = month.add(batch)
        if created.date() == now.date():
            today = today.add(batch)
    return today, month


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _spend_text(label: str, spent: Spend) -> Text:
    text = Text(f"{label} ", style="bold")
    text.append(("~" if spent.estimated else "") + _money(spent.usd))
    if spent.saved:
        text.append(f" (saved {_money(spent.saved)})", style="dim")
    if spent.unpriced:
        text.append(f" +{spent.unpriced} unpriced", style="dim")
    return text


def totals_text(batches: Iterable[Batch], now: datetime, colors: Mapping[str, str], filtered: bool) -> Text:
    batches = list(batches)
    per_status = Counter(batch.status for batch in batches)
    text = Text()
    text.append(f"{len(batches):,} batches", style="bold")
    if filtered:
        text.append(" (filtered)", style="dim")
    for status in Status:
        if per_status[status]:
            text.append("  ")
            text.append(f"{per_status[status]:,} {status.value.replace('_', ' ')}",
                        style=colors.get(status.value, ""))
    today, month = spend(batches, now)
    text.append("\n")
    text.append_text(_spend_text("today", today))
    text.append("   ")
    text.append_text(_spend_text("this month", month))
    return text


class TotalsBar(Static):
    def show(self, batches: Iterable[Batch], now: datetime, colors: Mapping[str, str], filtered: bool) -> None:
        self.update(totals_text(batches, now, colors, filtered))
