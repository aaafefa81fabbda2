"""The live batches table: rows keyed by (account, batch id), updated by diff.

`show()` is the only way rows change. It renders the batches it is told about, updates only the
cells whose content differs, adds and removes rows by key, re-sorts only when the order differs,
and keeps the cursor (and its place on screen) on the same batch. It never clears the table:
that would send the cursor to the top on every poll (STYLE.md, "keyed table diffs").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from batchtui.core.models import Batch
from batchtui.core.notices import risks
from batchtui.ui.messages import BatchKey
from batchtui.ui.widgets import cells
from batchtui.ui.widgets.cells import BAR_WIDTH, ID_WIDTH, STATUS_ORDER, KeyCell

# (key, label, fixed width or None for "fit the content")
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("account", "Account", None),
    ("id", "Batch", ID_WIDTH),
    ("status", "Status", 11),
    ("progress", "Progress", BAR_WIDTH + 14),
    ("failed", "Failed", 7),
    ("model", "Model", None),
    ("age", "Age", 6),
    ("left", "Left", 7),
    ("cost", "Cost", 9),
    ("risk", "!", 1),
)
COLUMN_LABELS = {key: label for key, label, _ in COLUMNS}
AUTO_WIDTH = frozenset(key for key, _, width in COLUMNS if width is None)
TIME_COLUMNS = ("age", "left", "risk")  # the only cells that change while the batch does not
DEFAULT_SORT = "age"  # youngest first: newest batches on top

Colors = Mapping[str, str]


def row_key(key: BatchKey) -> str:
    # Account names cannot hold "/" (config validates them), so this splits back unambiguously
    # even for Gemini ids like "batches/abc".
    return f"{key[0]}/{key[1]}"


def sort_value(column: str, batch: Batch, flags: list[str]) -> Any:
    """What a column sorts by: the underlying value, not the text shown. None sorts last."""
    counts = batch.counts
    match column:
        case "account":
            return (batch.provider.value, batch.account)
        case "id":
            return batch.id
        case "status":
            return STATUS_ORDER[batch.status]
        case "progress":
            return (counts.done or 0) / counts.total if counts.total else None
        case "failed":
            return counts.failed
        case "model":
            return batch.model
        case "age":
            return -batch.created_at.timestamp()
        case "left":
            return None if batch.is_terminal or batch.expires_at is None else batch.expires_at.timestamp()
        case "cost":
            return None if batch.cost is None else batch.cost.usd
        case "risk":
            return -len(flags) if flags else None
    raise ValueError(f"unknown column {column!r}")


class BatchTable(DataTable):
    """A DataTable of batches. The owner decides which batches exist; the table decides how
    they look and in what order, and remembers what it shows so it can diff."""

    # DataTable's own Enter binding is hidden; this one says what Enter does here, in the footer.
    BINDINGS = [Binding("enter", "select_cursor", "Detail", id="batchtui.detail",
                        tooltip="Everything about the selected batch")]

    def __init__(self, *, clock: Callable[[], datetime], colors: Callable[[], Colors], **kw: Any) -> None:
        super().__init__(cursor_type="row", **kw)
        # Widget already has `colors`; these name what they return.
        self.get_now = clock
        self.get_colors = colors
        self.row_filter: Callable[[Batch], bool] = lambda batch: True
        self.sort_column = DEFAULT_SORT
        self.sort_reverse = False
        self.shown: dict[BatchKey, Batch] = {}
        self.flags: dict[BatchKey, list[str]] = {}
        self._cells: dict[BatchKey, dict[str, Text]] = {}
        self._anchor: tuple[BatchKey, int] | None = None  # (batch, its line on screen) to restore
        self._painted_colors: Colors | None = None
        self._order_dirty = False  # a row came, or a sort value moved: check the order

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(Text(label), key=key, width=width)

    # -- what the owner calls ----------------------------------------------------------------

    def show(self, batches: Mapping[BatchKey, Batch], only: Collection[BatchKey] | None = None) -> None:
        """Bring the rows in line with `batches`: every key (only=None) or just `only`."""
        keys: Iterable[BatchKey] = set(self.shown) | set(batches) if only is None else only
        now, colors = self.get_now(), self.get_colors()
        recolor = colors != self._painted_colors  # a new theme: every coloured cell changes
        self._painted_colors = colors
        peers = _by_account(batches.values())
        with self._keep_cursor():
            for key in keys:
                batch = batches.get(key)
                if batch is not None and self.row_filter(batch):
                    self._put(batch, now, colors, peers[batch.account], recolor)
                elif key in self.shown:
                    self._drop(key)
            self._sort_if_needed()

    def set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._order_dirty = True
        with self._keep_cursor():
            self._sort_if_needed()

    def selected_key(self) -> BatchKey | None:
        if not self.row_count:
            return None
        row = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return _split(row.value)

    def select(self, key: BatchKey) -> bool:
        if key not in self.shown:
            return False
        self.move_cursor(row=self.get_row_index(row_key(key)))
        return True

    def order(self) -> list[BatchKey]:
        """The batch keys top to bottom, as displayed."""
        return [_split(row.key.value) for row in self.ordered_rows]

    # -- diffing -----------------------------------------------------------------------------

    def _render(self, batch: Batch, now: datetime, colors: Colors, flags: list[str],
                only_time: bool = False) -> dict[str, Text]:
        timed = {
            "age": cells.age_cell(batch, now),
            "left": cells.left_cell(batch, now, flags, colors),
            "risk": cells.risk_cell(flags, colors),
        }
        if only_time:
            return timed
        return {
            "account": cells.account_cell(batch),
            "id": cells.id_cell(batch),
            "status": cells.status_cell(batch, colors),
            "progress": cells.progress_cell(batch, colors),
            "failed": cells.failed_cell(batch, colors),
            "model": cells.model_cell(batch),
            "cost": cells.cost_cell(batch),
            **timed,
        }

    def _put(self, batch: Batch, now: datetime, colors: Colors, peers: list[Batch], recolor: bool) -> None:
        key = batch.key
        flags = risks(batch, now, peers)
        # The very same Batch object as last time (batches are immutable): only time moved on.
        previous = self.shown.get(key)
        unchanged = previous is batch and not recolor
        fresh = self._render(batch, now, colors, flags, only_time=unchanged)
        if previous is None or (sort_value(self.sort_column, previous, self.flags[key])
                                != sort_value(self.sort_column, batch, flags)):
            self._order_dirty = True
        self.shown[key], self.flags[key] = batch, flags
        old = self._cells.get(key)
        if old is None:
            self._cells[key] = fresh
            self.add_row(*(fresh[column] for column, _, _ in COLUMNS), key=row_key(key))
            return
        for column, cell in fresh.items():
            if not cells.same(old[column], cell):
                old[column] = cell
                # Fixed-width columns never resize; the fit-to-content ones may need to grow.
                self.update_cell(row_key(key), column, cell, update_width=column in AUTO_WIDTH)

    def _drop(self, key: BatchKey) -> None:
        self.remove_row(row_key(key))
        del self.shown[key], self.flags[key], self._cells[key]

    def _sort_if_needed(self) -> None:
        if not self._order_dirty:
            return
        self._order_dirty = False
        wanted = self._sorted_keys()
        if wanted == self.order():
            return
        rank = {key: index for index, key in enumerate(wanted)}
        # The first column's cell is a KeyCell: DataTable.sort gives the key function cells.
        self.sort("account", key=lambda cell: rank[cell.batch_key])

    def _sorted_keys(self) -> list[BatchKey]:
        column = self.sort_column
        valued, missing = [], []
        for key, batch in self.shown.items():
            value = sort_value(column, batch, self.flags[key])
            (missing if value is None else valued).append((value, key))
        # Ties (and the unsortable) fall back to newest first, then the key, so the order is
        # stable from one poll to the next.
        def tiebreak(item: tuple[Any, BatchKey]) -> tuple[float, BatchKey]:
            return (-self.shown[item[1]].created_at.timestamp(), item[1])

        valued.sort(key=tiebreak)
        valued.sort(key=lambda item: item[0], reverse=self.sort_reverse)
        missing.sort(key=tiebreak)
        return [key for _, key in valued] + [key for _, key in missing]

    @contextmanager
    def _keep_cursor(self):
        """Keep the cursor on the same batch, at the same height on screen."""
        before = self.selected_key()
        if self._anchor is not None and self._anchor[0] == before:
            offset = self._anchor[1]  # a restore is still pending: the scroll has not caught up
        else:
            offset = self.cursor_row - round(self.scroll_y)
        yield
        if before is None or before not in self.shown:
            return
        index = self.get_row_index(row_key(before))
        if index != self.cursor_row:
            self.move_cursor(row=index, scroll=False)
            self._anchor = (before, offset)
            self._restore_anchor()

    def _restore_anchor(self) -> None:
        """Scroll so the anchored batch is back on its line; forget the anchor once it is, or
        once the user has moved on to another batch."""
        if self._anchor is None:
            return
        key, offset = self._anchor
        if key != self.selected_key():
            self._anchor = None
            return
        wanted = max(0, self.get_row_index(row_key(key)) - offset)
        # Immediate and forced: the scrollbar may not be laid out yet, the range already is.
        self.scroll_to(y=wanted, animate=False, immediate=True, force=True)
        if round(self.scroll_y) == wanted:
            self._anchor = None
        # Else the table cannot scroll that far yet: new rows are measured on idle, and the
        # scroll range follows; `watch_virtual_size` tries again then.

    def watch_virtual_size(self) -> None:
        if self._anchor is not None:
            self.call_after_refresh(self._restore_anchor)

    def on_mouse_scroll_down(self) -> None:
        self._anchor = None  # the user scrolls: their scroll wins

    def on_mouse_scroll_up(self) -> None:
        self._anchor = None


def _split(value: str | None) -> BatchKey:
    assert value is not None
    account, _, batch_id = value.partition("/")
    return (account, batch_id)


def _by_account(batches: Iterable[Batch]) -> dict[str, list[Batch]]:
    grouped: dict[str, list[Batch]] = defaultdict(list)
    for batch in batches:
        grouped[batch.account].append(batch)
    return grouped
