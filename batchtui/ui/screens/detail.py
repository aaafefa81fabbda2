"""One batch in full (Enter on a row; Esc goes back): fields, timeline, request counts, the
error breakdown, usage and cost, files, retry lineage, and the provider's raw JSON.

The breakdown comes from the ledger's analysis; a finished batch with results and no analysis
yet is analysed by a worker while the pane shows a loading state. The raw JSON tab is filled
only when first opened (a batch's raw object can be large). Provider text is shown cut past a
limit, with its real length (see widgets/clipped.py). The same action keys as the home screen
act on this batch.
"""

from __future__ import annotations

import asyncio

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from batchtui.core.errors import BatchtuiError
from batchtui.core.fetch import analyse_results
from batchtui.core.models import Batch
from batchtui.core.text import printable
from batchtui.ui.batch_actions import BATCH_BINDINGS, BatchActions
from batchtui.ui.commands import BatchCommands
from batchtui.ui.messages import AnalysisReady, BatchKey
from batchtui.ui.widgets import batch_fields as fields
from batchtui.ui.widgets.activity import ActivityBar
from batchtui.ui.widgets.breakdown import Breakdown
from batchtui.ui.widgets.clipped import clipped, clipped_json

# The title is one line on a normal batch: an id longer than this would push the tabs down.
TITLE_ID_LIMIT = 120


class DetailScreen(BatchActions, Screen):
    COMMANDS = {BatchCommands}
    BINDINGS = [
        Binding("escape", "back", "Back", id="batchtui.back", tooltip="Back to the batches"),
        *BATCH_BINDINGS,
        Binding("1", "tab('overview')", "Overview", id="batchtui.tab_overview", show=False,
                tooltip="Show the overview"),
        Binding("2", "tab('raw')", "Raw JSON", id="batchtui.tab_raw", show=False,
                tooltip="Show the provider's raw JSON"),
    ]

    def __init__(self, key: BatchKey) -> None:
        super().__init__()
        self.key = key
        self.analysing = False
        self.analysis_note: str | None = None
        self.raw_filled = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="detail-title")
        with TabbedContent(initial="overview"):
            with TabPane("Overview", id="overview"):
                with Horizontal(id="detail-columns"):
                    with VerticalScroll(id="detail-left"):
                        yield Static(id="detail-fields")
                    with VerticalScroll(id="detail-right"):
                        yield Static(Text("Error breakdown", style="bold underline"), id="breakdown-title")
                        yield Breakdown(id="breakdown")
                        yield Static(id="detail-cost")
            with TabPane("Raw JSON", id="raw"):
                with VerticalScroll():
                    yield Static(id="raw-json")
        yield ActivityBar(id="activity")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.batches_changed.subscribe(self, self._changed, immediate=True)
        self.app.activity_changed.subscribe(self, self.query_one(ActivityBar).show, immediate=True)
        self.app.theme_changed_signal.subscribe(self, lambda _: self.paint())
        self.query_one(ActivityBar).show(self.app.downloads)
        self.paint()
        self._analyse_if_missing()

    def selected_batch(self) -> Batch | None:
        return self.app.batches.get(self.key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.batch_check_action(action)

    def _changed(self, keys: frozenset[BatchKey]) -> None:
        if self.key in keys:
            self.paint()
            self.refresh_bindings()

    # -- painting ---------------------------------------------------------------------------

    def paint(self) -> None:
        batch = self.selected_batch()
        if batch is None:
            self.query_one("#detail-title", Static).update(Text("This batch is no longer known.", style="bold"))
            return
        app, ledger = self.app, self.app.engine.ledger
        now, colors = app.clock(), app.status_colors()
        analysis = ledger.analysis(*self.key)
        title = Text(printable(batch.account) + "  ", style="bold")
        title.append_text(clipped(batch.id, TITLE_ID_LIMIT))
        title.append("  " + batch.status.value.replace("_", " "), style=f"bold {colors.get(batch.status.value, '')}")
        self.query_one("#detail-title", Static).update(title)
        downloads = {kind: d for kind in ("results", "errors") if (d := ledger.download(*self.key, kind))}
        self.query_one("#detail-fields", Static).update(Group(
            fields.section("Batch", fields.fields_rows(batch, colors)),
            fields.section("Timeline", fields.timeline_rows(batch, now)),
            fields.section("Requests", fields.counts_rows(batch)),
        ))
        self.query_one("#detail-cost", Static).update(Group(
            Text(""),
            fields.section("Usage and cost", fields.cost_rows(batch, analysis)),
            fields.section("Files", fields.files_rows(batch, downloads)),
            fields.section("Retry lineage", fields.lineage_rows(ledger.parent(*self.key), ledger.children(*self.key),
                                                               app.batches)),
        ))
        breakdown = self.query_one(Breakdown)
        breakdown.loading = self.analysing
        breakdown.show(batch, analysis, self.analysis_note)
        if self.raw_filled:
            self.query_one("#raw-json", Static).update(clipped_json(batch.raw))

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        batch = self.selected_batch()
        if event.pane.id == "raw" and not self.raw_filled and batch is not None:
            self.raw_filled = True
            self.query_one("#raw-json", Static).update(clipped_json(batch.raw))

    def action_tab(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- the breakdown, when the ledger has none yet ---------------------------------------------

    def _analyse_if_missing(self) -> None:
        batch = self.selected_batch()
        if batch is None or not batch.is_terminal or not batch.result_files:
            return
        if self.app.engine.ledger.analysis(*self.key) is not None:
            return
        self.analysing = True
        self.query_one(Breakdown).loading = True
        # Run by the app, so its one worker-error handler sees any failure.
        described = printable(batch.id, limit=TITLE_ID_LIMIT)
        self.app.run_worker(self._analyse(batch), name=f"analyse {batch.account}/{batch.id}", group="analyse",
                            exit_on_error=False, description=f"Analyse the results of {described}")

    async def _analyse(self, batch: Batch) -> None:
        engine = self.app.engine
        try:
            account = engine.settings.account(batch.account)
            await analyse_results(engine, account, batch)
            analysis = await asyncio.to_thread(engine.ledger.analysis, batch.account, batch.id)
            costed = engine.costed(batch)
            await asyncio.to_thread(engine.ledger.upsert_batches, [costed])
        except BatchtuiError as exc:
            # Expected (results archived, provider down): said in the pane, where it is read.
            self.post_message(AnalysisReady(batch.key, None, None, error=str(exc)))
            return
        except BaseException:
            self.post_message(AnalysisReady(batch.key, None, None, error="the analysis failed"))
            raise
        self.post_message(AnalysisReady(batch.key, costed, analysis))

    def on_analysis_ready(self, message: AnalysisReady) -> None:
        self.analysing = False
        if message.error:
            self.analysis_note = f"Could not analyse the results: {printable(message.error, limit=300)}"
        if message.batch is not None:
            self.app.apply_batches([message.batch])  # its cost may be known now; repaints us too
        self.paint()
