"""The totals bar: batches per status, and what today and this month cost (with the savings
against standard prices). It sums the batches the table shows, so a filter answers "what did
this account cost this month".

The sums are kept running (`Totals.add` / `Totals.remove` as rows come and go), bucketed by the
day a batch was created, so a poll that changes a hundred of ten thousand batches costs a
hundred updates and the bar reads at most a month of day buckets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from rich.text import Text

from batchtui.core.models import Batch, Status
from batchtui.ui.widgets.text_line import TextLine


@dataclass(frozen=True)
class Spend:
    usd: float = 0.0
    saved: float = 0.0
    estimated: bool = False  # some of it is an estimate (a running batch)
    unpriced: int = 0  # batches in the period whose cost is unknown


class _Day:
    """One creation day's sums. Counts, not flags, so a batch can be taken out again."""

    __slots__ = ("usd", "saved", "estimated", "unpriced")

    def __init__(self) -> None:
        self.usd = self.saved = 0.0
        self.estimated = self.unpriced = 0

    def add(self, batch: Batch, sign: int) -> None:
        cost = batch.cost
        if cost is None or cost.usd is None:
            self.unpriced += sign
            return
        self.usd += sign * cost.usd
        if cost.standard_usd is not None:
            self.saved += sign * (cost.standard_usd - cost.usd)
        self.estimated += sign * bool(cost.estimated)


class Totals:
    """Running totals over a changing set of batches, by creation day in the clock's zone (the
    real app's clock is local time; tests and snapshots pass a UTC one)."""

    def __init__(self, zone: tzinfo | None) -> None:
        self.zone = zone
        self.per_status: Counter[Status] = Counter()
        self._days: dict[date, _Day] = {}

    @property
    def count(self) -> int:
        return sum(self.per_status.values())

    def add(self, batch: Batch) -> None:
        self._change(batch, +1)

    def remove(self, batch: Batch) -> None:
        self._change(batch, -1)

    def _change(self, batch: Batch, sign: int) -> None:
        self.per_status[batch.status] += sign
        day = batch.created_at.astimezone(self.zone).date()
        bucket = self._days.get(day)
        if bucket is None:
            bucket = self._days[day] = _Day()
        bucket.add(batch, sign)

    def spend(self, now: datetime) -> tuple[Spend, Spend]:
        """(today, this month) as of `now`."""
        today = now.astimezone(self.zone).date()
        month = _Day()
        for day, bucket in self._days.items():
            if (day.year, day.month) == (today.year, today.month):
                month.usd += bucket.usd
                month.saved += bucket.saved
                month.estimated += bucket.estimated
                month.unpriced += bucket.unpriced
        return _spend(self._days.get(today) or _Day()), _spend(month)


def _spend(day: _Day) -> Spend:
    # Sums that went up and down again may hold a float crumb like 1e-15: not money.
    usd = round(day.usd, 9)
    saved = round(day.saved, 9)
    return Spend(usd + 0.0, saved + 0.0, day.estimated > 0, day.unpriced)


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


def totals_text(totals: Totals, now: datetime, colors: Mapping[str, str], filtered: bool) -> Text:
    text = Text()
    text.append(f"{totals.count:,} batches", style="bold")
    if filtered:
        text.append(" (filtered)", style="dim")
    for status in Status:
        if totals.per_status[status]:
            text.append("  ")
            text.append(f"{totals.per_status[status]:,} {status.value.replace('_', ' ')}",
                        style=colors.get(status.value, ""))
    today, month = totals.spend(now)
    text.append("\n")
    text.append_text(_spend_text("today", today))
    text.append("   ")
    text.append_text(_spend_text("this month", month))
    return text


class TotalsBar(TextLine):
    def show_totals(self, totals: Totals, now: datetime, colors: Mapping[str, str], filtered: bool) -> None:
        self.show(totals_text(totals, now, colors, filtered))
