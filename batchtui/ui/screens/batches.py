"""The home screen: every batch of every account in one live table, with the account health
strip above it and the totals below. It paints from the app's state at once and then on every
`batches_changed` / `statuses_changed` signal, passing only the changed keys to the table."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from batchtui.core.models import Batch
from batchtui.core.text import printable
from batchtui.ui.batch_actions import BATCH_BINDINGS, BatchActions
from batchtui.ui.commands import BatchCommands
from batchtui.ui.filters import BatchFilter, scopes_for
from batchtui.ui.messages import BatchKey
from batchtui.ui.widgets.activity import ActivityBar
from batchtui.ui.widgets.batch_table import COLUMN_LABELS, COLUMNS, BatchTable
from batchtui.ui.widgets.health import HealthStrip
from batchtui.ui.widgets.text_line import TextLine
from batchtui.ui.widgets.totals import TotalsBar

TICK_SECONDS = 10.0  # ages and time left move on their own; repaint them (paint only, no polling)


class BatchesScreen(BatchActions, Screen):
    COMMANDS = {BatchCommands}
    BINDINGS = [
        *BATCH_BINDINGS,
        Binding("slash", "filter", "Filter", id="batchtui.filter", tooltip="Filter by account, id, model, status, name"),
        Binding("x", "cycle_status", "Status", id="batchtui.status_filter", tooltip="Show one status at a time"),
        Binding("p", "cycle_scope", "Account", id="batchtui.account_filter",
                tooltip="Show one provider or account at a time"),
        Binding("S", "cycle_sort", "Sort", id="batchtui.sort", tooltip="Sort by the next column"),
        Binding("I", "reverse_sort", "Reverse", id="batchtui.reverse_sort", tooltip="Reverse the sort order",
                show=False),
        Binding("escape", "clear_filters", "Clear filters", id="batchtui.clear_filters",
                tooltip="Show every batch again", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = BatchFilter()

    def compose(self) -> ComposeResult:
        yield Header()
        yield HealthStrip(id="health")
        yield Input(placeholder="filter: account, id, model, status, name  (Enter keeps it, Esc clears)",
                    id="filter-input")
        yield BatchTable(clock=self.app.clock, colors=self.app.status_colors, id="batches")
        yield TextLine(id="row-hint")
        yield TextLine(id="filter-state")
        yield TotalsBar(id="totals")
        yield ActivityBar(id="activity")
        yield Footer(compact=True)

    @property
    def table(self) -> BatchTable:
        return self.query_one(BatchTable)

    def on_mount(self) -> None:
        self.query_one("#filter-input").display = False
        app = self.app
        # immediate=True: paint inside the app's handler, within its batch_update().
        app.batches_changed.subscribe(self, self.batches_changed, immediate=True)
        app.statuses_changed.subscribe(self, lambda _: self._paint_health(), immediate=True)
        app.activity_changed.subscribe(self, self.query_one(ActivityBar).show, immediate=True)
        app.theme_changed_signal.subscribe(self, lambda _: self.repaint())
        self.set_interval(TICK_SECONDS, self.tick, name="repaint ages")
        self.repaint()
        self.table.focus()

    # -- painting ---------------------------------------------------------------------------

    def repaint(self) -> None:
        """Everything (start-up, filter or sort change, theme change, the clock moving)."""
        self.table.show(self.app.batches)
        self._paint_health()
        self._paint_rest()

    def tick(self) -> None:
        """The clock moved on (every TICK_SECONDS): ages, time left, risk, today's totals."""
        self.table.tick()
        self._paint_rest()

    def batches_changed(self, keys: frozenset[BatchKey]) -> None:
        self.table.show(self.app.batches, only=keys)
        self._paint_rest()

    def _paint_health(self) -> None:
        self.query_one(HealthStrip).show_health(self.app.account_names(), self.app.account_statuses,
                                         self.app.status_colors())

    def _paint_rest(self) -> None:
        table = self.table
        self.query_one(TotalsBar).show_totals(table.totals, self.app.clock(), self.app.status_colors(),
                                       self.filter.active)
        arrow = "▼" if table.sort_reverse else "▲"
        sort = "newest first" if table.sort_column == "age" and not table.sort_reverse else \
            f"{COLUMN_LABELS[table.sort_column]} {arrow}"
        self.query_one("#filter-state", TextLine).show(
            Text(f"showing {printable(self.filter.describe())} · sorted by {sort}"
                 + (" · reading the ledger…" if self.app.loading else ""), style="dim"))
        self._paint_hint()

    def _paint_hint(self) -> None:
        batch = self.selected_batch()
        hint = Text()
        if batch is None:
            hint.append("No batches match the filters." if self.filter.active and self.app.batches
                        else "No batches yet.", style="dim")
        else:
            hint.append(printable(batch.id), style="bold")
            if batch.name:
                hint.append("  " + printable(batch.name, limit=60))
            flags = self.table.flags_of(batch.key) if batch.key in self.table.shown else []
            if flags:
                hint.append("  ⚠ " + ", ".join(flags), style="bold")
        self.query_one("#row-hint", TextLine).show(hint)

    # -- selection ----------------------------------------------------------------------------

    def selected_batch(self) -> Batch | None:
        key = self.table.selected_key()
        return None if key is None else self.app.batches.get(key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.batch_check_action(action)

    @on(BatchTable.Highlighted)
    def _highlighted(self) -> None:
        self.refresh_bindings()  # the footer shows only what applies to this batch
        self._paint_hint()

    @on(BatchTable.Selected)
    def _selected(self) -> None:
        self.action_open_detail()

    def action_open_detail(self) -> None:
        from batchtui.ui.screens.detail import DetailScreen

        key = self.table.selected_key()
        if key is not None and key in self.app.batches:
            self.app.push_screen(DetailScreen(key))

    # -- filters and sorting ------------------------------------------------------------------

    def _apply_filter(self, new: BatchFilter) -> None:
        old, self.filter = self.filter, new
        self.table.row_filter = new.matches
        if new.narrows(old):
            # A character typed: no batch hidden now can match, so only the rows shown are
            # looked at again (a third of them after "gem", not all 10,000).
            self.table.show(self.app.batches, only=list(self.table.shown))
            self._paint_rest()
        else:
            self.repaint()

    def action_filter(self) -> None:
        field = self.query_one("#filter-input", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter-input")
    def _typed(self, event: Input.Changed) -> None:
        self._apply_filter(BatchFilter(event.value.strip(), self.filter.status, self.filter.scope))

    @on(Input.Submitted, "#filter-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.display = False
        self.table.focus()

    def action_clear_filters(self) -> None:
        field = self.query_one("#filter-input", Input)
        field.value = ""
        field.display = False
        self._apply_filter(BatchFilter())
        self.table.focus()

    def action_cycle_status(self) -> None:
        self._apply_filter(self.filter.next_status())

    def action_cycle_scope(self) -> None:
        accounts = [(a.name, a.provider.value) for a in self.app.settings.accounts]
        self._apply_filter(self.filter.next_scope(scopes_for(accounts)))

    def action_cycle_sort(self) -> None:
        keys = [key for key, _, _ in COLUMNS]
        following = keys[(keys.index(self.table.sort_column) + 1) % len(keys)]
        self._sort(following, False)

    def action_reverse_sort(self) -> None:
        self._sort(self.table.sort_column, not self.table.sort_reverse)

    @on(BatchTable.HeaderSelected)
    def _header(self, event: BatchTable.HeaderSelected) -> None:
        column = event.column
        self._sort(column, not self.table.sort_reverse if column == self.table.sort_column else False)

    def _sort(self, column: str, reverse: bool) -> None:
        self.table.set_sort(column, reverse)
        self._paint_rest()

