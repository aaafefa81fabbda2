"""The live batches table: a virtual table that renders only the lines on screen.

Rows are keyed by (account, batch id). `show()` is the only way rows change: the owner passes
its batches and, after a poll, the keys that changed. The table keeps the batches that pass the
filter, their display order and running totals, each updated by the changed keys alone, and
never starts over: a poll must not send the cursor to the top (STYLE.md, "keyed table diffs").

Cells become `Text` only when their line is painted, for the lines on screen, and are cached
until their batch, the theme or the clock moves. A DataTable measures every cell of every row
before its first frame and re-indexes its rows on each removal; at 10,000 batches that was
seconds to start and minutes to filter. Here a row costs a few dict entries and one sort key.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial, total_ordering
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from batchtui.core.models import Batch
from batchtui.core.notices import risks
from batchtui.ui.messages import BatchKey
from batchtui.ui.widgets import cells
from batchtui.ui.widgets.cells import BAR_WIDTH, ID_WIDTH, STATUS_ORDER
from batchtui.ui.widgets.totals import Totals

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
PADDING = 1  # blank cells either side of each column
BULK_FROM = 1000  # changed keys from which sorting every row beats placing each
CACHED_ROWS = 512  # rendered rows kept: a few screens' worth

Colors = Mapping[str, str]


def sort_value(column: str, batch: Batch, flags: list[str] | None) -> Any:
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


@total_ordering
class _Descending:
    """A sort value that orders backwards, so one ascending key serves both directions."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value

    __hash__ = None  # type: ignore[assignment]


class _QueueWaits:
    """Per account, how long its started batches waited in the queue, and the median of that
    (what "stuck in queue" compares with). Each account's waits are sorted once when asked
    and again only after one of them changes: a row's "typical wait of the others" is read
    off that order, where it was a sort of thousands of waits per row painted."""

    def __init__(self) -> None:
        self._waits: dict[str, dict[str, timedelta]] = defaultdict(dict)
        self._ordered: dict[str, list[timedelta]] = {}  # account -> its waits, sorted
        self._noted: dict[BatchKey, Batch] = {}  # the batch object each key was noted as

    def note(self, key: BatchKey, batch: Batch) -> None:
        if self._noted.get(key) is batch:  # batches are immutable: nothing new (a filter, a resort)
            return
        self._noted[key] = batch
        waits = self._waits[batch.account]
        wait = None if batch.in_progress_at is None else batch.in_progress_at - batch.created_at
        if waits.get(batch.id) != wait:
            if wait is None:
                del waits[batch.id]
            else:
                waits[batch.id] = wait
            self._ordered.pop(batch.account, None)

    def forget(self, key: BatchKey) -> None:
        self._noted.pop(key, None)
        if self._waits[key[0]].pop(key[1], None) is not None:
            self._ordered.pop(key[0], None)

    def typical(self, batch: Batch) -> timedelta | None:
        waits = self._waits[batch.account]
        ordered = self._ordered.get(batch.account)
        if ordered is None:
            ordered = self._ordered[batch.account] = sorted(waits.values())
        own = waits.get(batch.id)
        if own is None:
            return _median(ordered)
        # The batch itself is not its own peer: the median of the others.
        return _median_without(ordered, bisect_left(ordered, own))


def _median(ordered: list[timedelta]) -> timedelta | None:
    return _median_without(ordered, len(ordered))


def _median_without(ordered: list[timedelta], skip: int) -> timedelta | None:
    """The median of sorted `ordered` with the item at `skip` left out (none if past the end)."""
    count = len(ordered) - (skip < len(ordered))
    if count <= 0:
        return None

    def at(index: int) -> timedelta:
        return ordered[index if index < skip else index + 1]

    middle = count // 2
    return at(middle) if count % 2 else (at(middle - 1) + at(middle)) / 2


def _plain_fit(cell: Text, width: int) -> bool:
    """Whether `_strip` can lay `cell` out without Rich: it fits, and its spans are plain ones
    (inside the text, none empty)."""
    length = len(cell.plain)
    return cell.cell_len <= width and all(0 <= span.start < span.end <= length for span in cell.spans)


def _runs(text: str, shift: int, spans: list[Span], base: Style | None,
          get_style: Callable[[Any], Style]) -> list[tuple[str, Style | None]]:
    """A cell's text cut at every span edge (spans moved right by `shift`), each run in the
    base style plus the spans over it, in span order (None where nothing covers it): the runs
    `Text.render` yields for it."""
    if not spans:
        return [(text, base)] if text else []
    edges = {0, len(text)}
    for span in spans:
        edges.update((span.start + shift, span.end + shift))
    cuts = sorted(edges)
    runs: list[tuple[str, Style | None]] = []
    for start, end in zip(cuts, cuts[1:]):
        over = [get_style(span.style) for span in spans if span.start + shift <= start and end <= span.end + shift]
        parts = [base, *over] if base is not None else over
        runs.append((text[start:end], Style.combine(parts) if parts else None))
    return runs


class BatchTable(ScrollView, can_focus=True):
    """The batches of every account. The owner decides which batches exist; the table decides
    which of them pass the filter, how they look and in what order."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"batch-table--header", "batch-table--cursor"}
    DEFAULT_CSS = """
    BatchTable {
        background: $surface;
        color: $foreground;
        & > .batch-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .batch-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .batch-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Detail", id="batchtui.detail",
                tooltip="Everything about the selected batch"),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first", "Top", show=False),
        Binding("end,ctrl+end", "last", "Bottom", show=False),
    ]

    class Highlighted(Message):
        """The cursor is on another batch (or on none)."""

        def __init__(self, key: BatchKey | None) -> None:
            super().__init__()
            self.key = key

    class Selected(Message):
        """Enter or a double click on a batch."""

        def __init__(self, key: BatchKey) -> None:
            super().__init__()
            self.key = key

    class HeaderSelected(Message):
        """A click on a column's header."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, *, clock: Callable[[], datetime], colors: Callable[[], Colors], **kw: Any) -> None:
        super().__init__(**kw)
        # Widget already has `colors`; these name what they return.
        self.get_now = clock
        self.get_colors = colors
        self.row_filter: Callable[[Batch], bool] = lambda batch: True
        self.sort_column = DEFAULT_SORT
        self.sort_reverse = False
        self.shown: dict[BatchKey, Batch] = {}
        self.cursor_row = 0
        self._now = clock()
        self._colors: Colors = {}
        self.totals = Totals(self._now.tzinfo)
        self._order: list[tuple] = []  # sort keys, ascending; each ends with its batch key
        self._sort_keys: dict[BatchKey, tuple] = {}
        self._newest_first: dict[BatchKey, float] = {}  # -created_at as a timestamp
        self._waits = _QueueWaits()
        self._widths = {key: width or len(label) for key, label, width in COLUMNS}
        self._fit: dict[str, Counter[int]] = {key: Counter() for key in AUTO_WIDTH}  # content widths seen
        self._row_fit: dict[BatchKey, tuple[int, int]] = {}
        self._measured: dict[tuple[str, Any], int] = {}
        self._flags: dict[BatchKey, list[str]] = {}  # for this clock reading; cleared when it moves
        self._cells: LRUCache[BatchKey, tuple[Batch, dict[str, Text]]] = LRUCache(CACHED_ROWS)
        self._lines: LRUCache[tuple, Strip] = LRUCache(CACHED_ROWS)
        self._paint = 0  # bumped whenever every painted line is stale (clock, theme, focus, widths)
        self._last_highlight: BatchKey | None = None

    # -- what the owner calls ----------------------------------------------------------------

    def show(self, batches: Mapping[BatchKey, Batch], only: Collection[BatchKey] | None = None) -> None:
        """Bring the rows in line with `batches`: every key (only=None) or just `only`."""
        colors = self.get_colors()
        if colors != self._colors:
            self._colors = colors
            self._cells.clear()  # a new theme: every coloured cell changes
        self._set_now(self.get_now(), resort=only is None)
        keys: Iterable[BatchKey] = set(self.shown) | set(batches) if only is None else only
        before = self.selected_key()
        offset = self.cursor_row - round(self.scroll_y)
        top, bottom = self._visible_rows()
        repaint = False
        widths = dict(self._widths)
        # Every key (start-up, a filter, the clock) or a great many: one sort at the end beats
        # one insertion per row. A poll's few keys are placed one by one instead.
        bulk = only is None or len(only) > BULK_FROM
        touched: list[BatchKey] = []  # changed rows that kept their place
        placed = False  # any row shown, dropped or moved: in bulk, the order is sorted again
        for key in keys:
            batch = batches.get(key)
            if batch is not None:
                self._waits.note(key, batch)
            else:
                self._waits.forget(key)
            if batch is not None and self.row_filter(batch):
                if self.shown.get(key) is batch:
                    continue
                placed = True
                if self._put(key, batch, bulk):
                    repaint = True
                else:
                    touched.append(key)
            elif key in self.shown:
                placed = True
                repaint |= self._drop(key, bottom, bulk)
        if bulk:
            if placed:  # else the order stands (a filter that let the same rows through)
                self._order = sorted(self._sort_keys.values())
            repaint = True
        if widths != self._widths:
            self._paint += 1
            repaint = True
        if not repaint and top < min(bottom, len(self._order)):
            # Only rows that stayed put changed: repaint just those on screen, if any. A row is
            # on screen when its sort key lies between the first and last shown (no search).
            first, last = self._order[top], self._order[min(bottom, len(self._order)) - 1]
            for key in touched:
                if first <= self._sort_keys[key] <= last:
                    self._refresh_row(self._index_of(key))
        self._settle(before, offset, repaint)

    def tick(self) -> None:
        """The clock moved on, nothing else: ages, time left and risk flags change on screen
        (and the order, when sorted by risk). No walk over every batch."""
        before = self.selected_key()
        offset = self.cursor_row - round(self.scroll_y)
        self._set_now(self.get_now(), resort=True)
        self._settle(before, offset, True)

    def set_sort(self, column: str, reverse: bool) -> None:
        if (column, reverse) == (self.sort_column, self.sort_reverse):
            return
        before = self.selected_key()
        offset = self.cursor_row - round(self.scroll_y)
        self.sort_column, self.sort_reverse = column, reverse
        self._resort()
        self._settle(before, offset, True)

    @property
    def row_count(self) -> int:
        return len(self._order)

    def flags_of(self, key: BatchKey) -> list[str]:
        """A shown batch's risk flags as of the last `show` (worked out when first asked: mostly
        for the rows on screen)."""
        flags = self._flags.get(key)
        return self._fresh_flags(key, self.shown[key]) if flags is None else flags

    def selected_key(self) -> BatchKey | None:
        if not self._order:
            return None
        return self._order[min(self.cursor_row, len(self._order) - 1)][-1]

    def select(self, key: BatchKey) -> bool:
        if key not in self.shown:
            return False
        self.move_cursor(row=self._index_of(key))
        return True

    def order(self) -> list[BatchKey]:
        """The batch keys top to bottom, as displayed."""
        return [entry[-1] for entry in self._order]

    def cell(self, key: BatchKey, column: str) -> Text:
        """The cell as painted (rendered on demand for rows off screen)."""
        return self._row_cells(key)[column]

    def column_offset(self, column: str) -> int:
        """Where a column starts, in cells from the table's left edge."""
        x = 0
        for key, _, _ in COLUMNS:
            if key == column:
                return x
            x += self._widths[key] + 2 * PADDING
        raise ValueError(f"unknown column {column!r}")

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        last = max(0, len(self._order) - 1)
        row = max(0, min(row, last))
        if row != self.cursor_row:
            self._refresh_row(self.cursor_row)
            self.cursor_row = row
            self._refresh_row(row)
        if scroll:
            self._scroll_to_cursor()
        self._announce()

    # -- rows --------------------------------------------------------------------------------

    def _put(self, key: BatchKey, batch: Batch, bulk: bool = False) -> bool:
        """Show `batch` (new or changed); True when rows moved (a new row, a new place). In
        `bulk`, the caller sorts the rows afterwards."""
        previous = self.shown.get(key)
        self._flags.pop(key, None)
        sort_key = self._sort_key(key, batch)
        if bulk:
            if previous is not None:
                self.totals.remove(previous)
                self._unfit(key)
            moved = True
        elif previous is None:
            insort(self._order, sort_key)
            moved = True  # the rows below it moved down
        else:
            old_key = self._sort_keys[key]
            moved = old_key != sort_key
            if moved:
                del self._order[bisect_left(self._order, old_key)]
                insort(self._order, sort_key)
            # Most changes are counts moving on: the totals and widths stay as they were.
            if not _same_totals(previous, batch):
                self.totals.remove(previous)
                self.totals.add(batch)
            if (previous.provider, previous.account, previous.model) != (batch.provider, batch.account, batch.model):
                self._unfit(key)
                self._fit_row(key, batch)
            self.shown[key] = batch
            self._sort_keys[key] = sort_key
            return moved
        self.shown[key] = batch
        self._sort_keys[key] = sort_key
        self.totals.add(batch)
        self._fit_row(key, batch)
        return moved

    def _drop(self, key: BatchKey, bottom: int, bulk: bool = False) -> bool:
        batch = self.shown.pop(key)
        sort_key = self._sort_keys.pop(key)
        index = 0
        if not bulk:
            index = bisect_left(self._order, sort_key)
            del self._order[index]
        self.totals.remove(batch)
        self._unfit(key)
        self._flags.pop(key, None)
        self._newest_first.pop(key, None)
        return index < bottom

    def _sort_key(self, key: BatchKey, batch: Batch) -> tuple:
        column = self.sort_column
        # Ties (and the unsortable, last) fall back to newest first, then the key, so the order
        # is stable from one poll to the next. A batch's creation time never changes, and
        # datetime.timestamp() is slow enough to show in a poll: it is worked out once.
        tiebreak = self._newest_first.get(key)
        if tiebreak is None or batch.created_at != self.shown.get(key, batch).created_at:
            tiebreak = self._newest_first[key] = -batch.created_at.timestamp()
        if column == "age":
            value = tiebreak
        else:
            value = sort_value(column, batch, self._fresh_flags(key, batch) if column == "risk" else None)
        if value is None:
            return (1, 0, tiebreak, key)
        return (0, _Descending(value) if self.sort_reverse else value, tiebreak, key)

    def _fresh_flags(self, key: BatchKey, batch: Batch) -> list[str]:
        flags = self._flags[key] = risks(batch, self._now, typical_wait=self._waits.typical(batch))
        return flags

    def _resort(self) -> None:
        self._sort_keys = {key: self._sort_key(key, batch) for key, batch in self.shown.items()}
        self._order = sorted(self._sort_keys.values())

    def _index_of(self, key: BatchKey) -> int:
        return bisect_left(self._order, self._sort_keys[key])

    def _set_now(self, now: datetime, *, resort: bool) -> None:
        if now == self._now:
            return
        self._now = now
        self._flags.clear()
        self._paint += 1  # ages and time left moved
        if now.tzinfo != self.totals.zone:  # local time changed zone (summer time)
            self.totals = Totals(now.tzinfo)
            for batch in self.shown.values():
                self.totals.add(batch)
        if resort and self.sort_column == "risk":  # the only order that moves with the clock
            self._resort()

    def _settle(self, before: BatchKey | None, offset: int, repaint: bool) -> None:
        """After rows changed: size, cursor on the same batch at the same height, repaint."""
        self.virtual_size = Size(self._total_width(), len(self._order) + 1)
        if before is not None and before in self.shown:
            index = self._index_of(before)
            if index != self.cursor_row:
                self.cursor_row = index
                # Keep the batch where it was seen; as far as the table can scroll.
                self.scroll_to(y=max(0, index - offset), animate=False, immediate=True, force=True)
                repaint = True
        else:
            self.cursor_row = max(0, min(self.cursor_row, len(self._order) - 1))
        if repaint:
            self.refresh()
        self._announce()

    def _announce(self) -> None:
        key = self.selected_key()
        if key != self._last_highlight:
            self._last_highlight = key
            self.post_message(self.Highlighted(key))

    # -- column widths -------------------------------------------------------------------------

    def _fit_row(self, key: BatchKey, batch: Batch) -> None:
        fit = (self._fit_width("account", batch), self._fit_width("model", batch))
        self._row_fit[key] = fit
        for column, width in zip(("account", "model"), fit):
            self._fit[column][width] += 1
            if width > self._widths[column]:
                self._widths[column] = width

    def _fit_width(self, column: str, batch: Batch) -> int:
        # Ten thousand batches share a dozen accounts and a few models: measure each once.
        source = (batch.provider, batch.account) if column == "account" else batch.model
        width = self._measured.get((column, source))
        if width is None:
            cell = cells.account_cell(batch) if column == "account" else cells.model_cell(batch)
            width = self._measured[(column, source)] = cell.cell_len
        return width

    def _unfit(self, key: BatchKey) -> None:
        fit = self._row_fit.pop(key)
        for column, width in zip(("account", "model"), fit):
            counter = self._fit[column]
            counter[width] -= 1
            if not counter[width]:
                del counter[width]
                if width == self._widths[column]:  # the widest left: shrink to the next
                    self._widths[column] = max([len(COLUMN_LABELS[column]), *counter])

    def _total_width(self) -> int:
        return sum(self._widths.values()) + 2 * PADDING * len(COLUMNS)

    # -- painting ------------------------------------------------------------------------------

    def _visible_rows(self) -> tuple[int, int]:
        top = round(self.scroll_y)
        return top, top + max(1, self.scrollable_content_region.height - 1)

    def _row_cells(self, key: BatchKey) -> dict[str, Text]:
        batch = self.shown[key]
        cached = self._cells.get(key)
        if cached is None or cached[0] is not batch:
            colors = self._colors
            fixed = {
                "account": cells.account_cell(batch),
                "id": cells.id_cell(batch),
                "status": cells.status_cell(batch, colors),
                "progress": cells.progress_cell(batch, colors),
                "failed": cells.failed_cell(batch, colors),
                "model": cells.model_cell(batch),
                "cost": cells.cost_cell(batch),
            }
            cached = (batch, fixed)
            self._cells[key] = cached
        flags = self.flags_of(key)
        return {
            **cached[1],
            "age": cells.age_cell(batch, self._now),
            "left": cells.left_cell(batch, self._now, flags, self._colors),
            "risk": cells.risk_cell(flags, self._colors),
        }

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        if y == 0:  # the header's colour runs the whole width, like DataTable's
            return self._header().crop_extend(scroll_x, scroll_x + width, base + self._header_style())
        else:
            index = scroll_y + y - 1
            if index >= len(self._order):
                return Strip.blank(width, base)
            strip = self._row_line(index)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _header(self) -> Strip:
        cache_key = ("header", self._paint)
        strip = self._lines.get(cache_key)
        if strip is None:
            strip = self._strip({key: Text(label) for key, label, _ in COLUMNS}, self.rich_style,
                                self._header_style())
            self._lines[cache_key] = strip
        return strip

    def _header_style(self) -> Style:
        return self.get_component_rich_style("batch-table--header")

    def _row_line(self, index: int) -> Strip:
        key = self._order[index][-1]
        cursor = index == self.cursor_row
        cache_key = (key, self._paint, cursor, self.has_focus)
        strip = self._lines.get(cache_key)
        if strip is None or self._cells.get(key, (None,))[0] is not self.shown[key]:
            over = self.get_component_rich_style("batch-table--cursor") if cursor else None
            strip = self._strip(self._row_cells(key), self.rich_style, over)
            self._lines[cache_key] = strip
        return strip

    def _strip(self, row: dict[str, Text], under: Style, over: Style | None = None) -> Strip:
        """One line: each cell fitted to its column (cut with an ellipsis, or padded), padded
        either side; the widget's style lies under the cells' own colours, the header's and the
        cursor's over them (the cursor line reads in one colour, like DataTable's).

        The segments are the ones Rich renders for these cells appended to one `Text`, made
        without that `Text` (copying, cutting and aligning ten cells, then rendering the line,
        was most of a row's paint). A cell that must be cut goes the `Text` way."""
        widths = self._widths
        if not all(_plain_fit(row[key], widths[key]) for key, _, _ in COLUMNS):
            return self._strip_via_text(row, under, over)
        get_style = partial(self.app.console.get_style, default=Style.null())
        segments: list[Segment] = []
        plain: list[str] = []  # unstyled text since the last styled run: Rich makes it one segment
        pad = " " * PADDING
        for key, _, _ in COLUMNS:
            cell = row[key]
            excess = " " * (widths[key] - cell.cell_len)
            left, right = (excess, "") if cell.justify == "right" else ("", excess)
            plain.append(pad)
            if cell.style:  # the cell's style covers its padding too
                runs = _runs(left + cell.plain + right, len(left), cell.spans, get_style(cell.style), get_style)
            else:
                plain.append(left)
                runs = _runs(cell.plain + right, 0, cell.spans, None, get_style)
            for text, style in runs:
                if style is None:
                    plain.append(text)
                else:
                    segments.append(Segment("".join(plain)))
                    plain.clear()
                    segments.append(Segment(text, style))
            plain.append(pad)
        segments.append(Segment("".join(plain)))
        if len(segments) > 1:
            # Once any span exists, Rich gives the unstyled runs the line's own (null) style.
            null = Style.null()
            segments = [Segment(text, style or null) for text, style, _ in segments if text]
        return Strip(Segment.apply_style(segments, under, over), sum(cell_len(text) for text, _, _ in segments))

    def _strip_via_text(self, row: dict[str, Text], under: Style, over: Style | None = None) -> Strip:
        """`_strip` by way of one Rich `Text`: for cells that must be cut to fit."""
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        pad = " " * PADDING
        for key, _, _ in COLUMNS:
            cell = row[key].copy()
            cell.truncate(self._widths[key], overflow="ellipsis")
            cell.align("right" if cell.justify == "right" else "left", self._widths[key])
            line.append(pad)
            line.append_text(cell)
            line.append(pad)
        segments = list(line.render(self.app.console))
        return Strip(Segment.apply_style(segments, under, over), line.cell_len)

    def _refresh_row(self, index: int) -> None:
        self.refresh_line(index + 1)  # virtual lines: the header is line 0

    def on_focus(self) -> None:
        self._paint += 1
        self.refresh()

    def on_blur(self) -> None:
        self._paint += 1
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._paint += 1  # the theme's header and cursor styles

    # -- moving --------------------------------------------------------------------------------

    def _scroll_to_cursor(self) -> None:
        top, bottom = self._visible_rows()
        row = self.cursor_row
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True, force=True)
        elif row >= bottom:
            self.scroll_to(y=row - (bottom - top) + 1, animate=False, immediate=True, force=True)

    def _page(self) -> int:
        top, bottom = self._visible_rows()
        return max(1, bottom - top)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self.cursor_row + self._page())

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key()
        if key is not None:
            self.post_message(self.Selected(key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + round(self.scroll_x)
            for key, _, _ in COLUMNS:
                start = self.column_offset(key)
                if start <= x < start + self._widths[key] + 2 * PADDING:
                    self.post_message(self.HeaderSelected(key))
                    return
            return
        row = round(self.scroll_y) + offset.y - 1
        if row < len(self._order):
            self.move_cursor(row=row, scroll=False)
            if event.chain >= 2:
                self.action_select_cursor()


def _same_totals(old: Batch, new: Batch) -> bool:
    """Whether the two count the same in the totals (status, creation day, cost)."""
    return (old.status is new.status and old.created_at == new.created_at
            and (old.cost is new.cost or old.cost == new.cost))
