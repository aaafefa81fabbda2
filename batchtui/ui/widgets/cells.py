"""How one batch reads in the table: a `Text` per cell, never a markup string.

Every cell built here is a `rich.text.Text`, never a string that could be read as markup, and
every provider string (ids, names, models, account names) passes through `printable()` first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from rich.text import Text

from batchtui.core.costing import money
from batchtui.core.models import Batch, Status
from batchtui.core.text import printable

BAR_WIDTH = 6
_EIGHTHS = " ▏▎▍▌▋▊▉"
ID_WIDTH = 17
MODEL_WIDTH = 18

# The lifecycle order, for sorting by status and listing totals.
STATUS_ORDER: dict[Status, int] = {status: index for index, status in enumerate(Status)}


def short_id(batch_id: str, width: int = ID_WIDTH) -> str:
    """Head and tail of a long id: the head says which provider, the tail tells batches apart."""
    if len(batch_id) <= width:
        return batch_id
    tail = (width - 1) // 2
    return batch_id[: width - 1 - tail] + "…" + batch_id[-tail:]


def compact(delta: timedelta) -> str:
    """'45s', '12m', '5h12m', '3d4h': short enough for a narrow column."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 10:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours and days < 10 else f"{days}d"


def account_cell(batch: Batch) -> Text:
    cell = Text()
    cell.append(printable(batch.provider.value), style="dim")
    cell.append("/")
    cell.append(printable(batch.account, limit=32))
    return cell


def id_cell(batch: Batch) -> Text:
    # Escaped first, then shortened: the column's width is for what is shown.
    return Text(short_id(printable(batch.id)))


def status_cell(batch: Batch, colors: Mapping[str, str]) -> Text:
    return Text(batch.status.value.replace("_", " "), style=colors.get(batch.status.value, ""))


def progress_cell(batch: Batch, colors: Mapping[str, str]) -> Text:
    counts = batch.counts
    if not counts.live and not batch.is_terminal:
        # Anthropic freezes its counts until the batch ends: say what is known, not a fake bar.
        waiting = counts.processing if counts.processing is not None else counts.total
        return Text(f"{waiting:,} processing" if waiting is not None else "processing", style="dim")
    if not counts.total:
        return Text("-", style="dim")
    done = min(counts.done or 0, counts.total)
    bar = _bar(done / counts.total)
    # Finalizing batches have every request done but no results yet: the bar takes the
    # finalizing colour, never the completed one.
    text = Text()
    text.append(bar, style=colors.get(batch.status.value, ""))
    text.append(f" {done:,}/{counts.total:,}")
    return text


def _bar(fraction: float) -> str:
    eighths = round(max(0.0, min(1.0, fraction)) * BAR_WIDTH * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[part] if part else "")
    return bar.ljust(BAR_WIDTH, "·")


def failed_cell(batch: Batch, colors: Mapping[str, str]) -> Text:
    failed = batch.counts.failed
    if failed is None:
        return Text("-", style="dim", justify="right")
    if failed == 0:
        return Text("0", style="dim", justify="right")
    return Text(f"{failed:,}", style=f"bold {colors.get('failed', '')}".strip(), justify="right")


def model_cell(batch: Batch) -> Text:
    return Text(printable(batch.model, limit=MODEL_WIDTH) if batch.model else "-")


def age_cell(batch: Batch, now: datetime) -> Text:
    return Text(compact(now - batch.created_at), justify="right")


def left_cell(batch: Batch, now: datetime, flags: list[str], colors: Mapping[str, str]) -> Text:
    """Time left before the provider expires the batch (24 h; Gemini 48 h): only while it runs."""
    if batch.is_terminal or batch.expires_at is None:
        return Text("", justify="right")
    left = batch.expires_at - now
    if left <= timedelta(0):
        return Text("overdue", style=f"bold {colors.get('expired', '')}".strip(), justify="right")
    style = f"bold {colors.get('cancelling', '')}".strip() if "expires soon" in flags else ""
    return Text(compact(left), style=style, justify="right")


def cost_cell(batch: Batch) -> Text:
    # `money` marks an estimate with "~" and an unknown cost with "-".
    return Text(money(batch.cost), justify="right", style="dim" if batch.cost is None or batch.cost.usd is None else "")


def risk_cell(flags: list[str], colors: Mapping[str, str]) -> Text:
    if not flags:
        return Text("")
    return Text("⚠", style=f"bold {colors.get('cancelling', '')}".strip())
