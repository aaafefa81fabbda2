"""What the action keys do, run by the app so a download survives leaving the detail screen.

Each operation is a worker that declares itself (group, description, exit_on_error=False) and
posts a typed message when done; the handlers below toast and repaint. Errors are not caught
here: the app's one `on_worker_state_changed` handler reports them.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual.worker import WorkerState

from batchtui.core.models import Batch
from batchtui.core.text import printable
from batchtui.ui.messages import CancelRequested, FetchDone, FetchProgress, RetryPlanned, RetrySent
from batchtui.ui.screens.confirm import ConfirmScreen
from batchtui.ui.widgets.cells import short_id

if TYPE_CHECKING:
    from batchtui.ui.app import BatchtuiApp

    _Base = BatchtuiApp
else:
    _Base = object


def _label(batch: Batch) -> str:
    return f"{printable(batch.account)} {short_id(printable(batch.id))}"


class BatchOperations(_Base):
    """Mixin for BatchtuiApp: fetch, retry, cancel, copy id, open the console."""

    # -- fetch ------------------------------------------------------------------------------

    def fetch(self, batch: Batch) -> None:
        name = f"fetch {batch.account}/{batch.id}"
        if any(w.name == name and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers):
            self.notify(f"Already fetching {_label(batch)}", markup=False)
            return
        self.run_worker(self._fetch(batch), name=name, group="fetch", exit_on_error=False,
                        description=f"Fetch results of {_label(batch)}")

    async def _fetch(self, batch: Batch) -> None:
        account = self.engine.settings.account(batch.account)
        out_dir = self.engine.settings.downloads_path(self.engine.paths)
        key = batch.key

        def progress(kind: str, size: int) -> None:
            self.post_message(FetchProgress(key, kind, size))

        result = None
        try:
            progress(batch.result_files[0].kind if batch.result_files else "results", 0)
            from batchtui.core.fetch import fetch_results  # loaded when first used: not before the first paint

            result = await fetch_results(self.engine, account, batch, out_dir, progress=progress)
            if result.summary is not None:
                # The analysis may have priced the batch: keep the ledger's copy current.
                await asyncio.to_thread(self.engine.ledger.upsert_batches, [result.batch])
        finally:
            self.post_message(FetchDone(key, result))

    def on_fetch_progress(self, message: FetchProgress) -> None:
        self.downloads[message.key] = (message.kind, message.size)
        self.activity_changed.publish(dict(self.downloads))

    def on_fetch_done(self, message: FetchDone) -> None:
        self.downloads.pop(message.key, None)
        self.activity_changed.publish(dict(self.downloads))
        result = message.result
        if result is None:
            return
        folder = result.files[0].path.parent if result.files else None
        text = Text("Already fetched: " if result.no_op else "Fetched to ")
        text.append(str(folder) if folder else "-")
        if not result.no_op:
            lines = ", ".join(f"{f.kind} {f.lines:,} lines" for f in result.files)
            text.append(f"\n{lines}")
        self.notify(text.plain, title=_label(result.batch), markup=False)
        self.apply_batches([result.batch])

    # -- retry ------------------------------------------------------------------------------

    def retry(self, batch: Batch, *, include_request_errors: bool = False) -> None:
        self.run_worker(self._plan_retry(batch, include_request_errors), name=f"plan retry {batch.account}/{batch.id}",
                        group="retry", exit_on_error=False, description=f"Retry failed items of {_label(batch)}")

    def retry_all(self, batch: Batch) -> None:
        """Retry with request errors and blocked items too (the CLI's --include-request-errors)."""
        self.retry(batch, include_request_errors=True)

    async def _plan_retry(self, batch: Batch, include_request_errors: bool = False) -> None:
        account = self.engine.settings.account(batch.account)
        from batchtui.core.retry import plan_retry

        plan = await plan_retry(self.engine, account, batch, include_request_errors=include_request_errors)
        links = await asyncio.to_thread(self.engine.ledger.children, batch.account, batch.id)
        self.post_message(RetryPlanned(plan, tuple(link.child_id for link in links)))

    def on_retry_planned(self, message: RetryPlanned) -> None:
        plan = message.plan
        # An earlier retry still running means confirming sends the same requests twice: the
        # dialog says so, and a confirmed send goes past that one guard (never the claim that
        # keeps another batchtui from sending the same retry at the same moment).
        running = [child_id for child_id in message.children
                   if not (child := self.batches.get((plan.account.name, child_id))) or not child.is_terminal]
        body = Text()
        body.append(f"Resend {len(plan.custom_ids):,} requests of ")
        body.append(printable(plan.parent.id), style="bold")
        body.append(" as a new batch.\n\n")
        for outcome, count in sorted(plan.by_outcome.items()):
            body.append(f"  {outcome}: {count:,}\n")
        cost = plan.estimated_cost
        estimate = f"~${cost.usd:,.2f}" if cost is not None and cost.usd is not None else "unknown"
        body.append(f"\nEstimated cost: {estimate}\n")
        body.append(f"Requests from: {printable(plan.source)}\n")
        if running:
            body.append(f"\nAn earlier retry ({printable(running[0])}) is still running: "
                        "both would resend the same requests.\n", style="bold")

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            parent_key = plan.parent.key
            sending = self._retries_sending()
            if parent_key in sending:
                # Two dialogs for one batch (R pressed twice): only the first confirmation sends.
                self.notify("A retry of this batch is already being sent", title=_label(plan.parent),
                            severity="warning", markup=False)
                return
            sending.add(parent_key)
            self.run_worker(self._send_retry(plan, despite_running_child=bool(running)),
                            name=f"retry {plan.account.name}/{plan.parent.id}", group="retry",
                            exit_on_error=False, description=f"Retry failed items of {_label(plan.parent)}")

        self.push_screen(ConfirmScreen("Retry failed items?", body, confirm="Retry"), answered)

    def _retries_sending(self) -> set:
        """Parents whose retry is being sent now (a mixin has no __init__ of its own)."""
        return vars(self).setdefault("_sending_retry_parents", set())

    async def _send_retry(self, plan, *, despite_running_child: bool) -> None:
        try:
            from batchtui.core.retry import run_retry

            submitted = await run_retry(self.engine, plan, despite_running_child=despite_running_child)
        finally:
            self._retries_sending().discard(plan.parent.key)
        self.post_message(RetrySent(plan, submitted))

    def on_retry_sent(self, message: RetrySent) -> None:
        child = message.submitted.batch
        self.notify(f"Retry batch {printable(child.id)} created with {message.submitted.requests:,} requests",
                    title=_label(message.plan.parent), markup=False)
        self.submitted(child)

    # -- cancel -----------------------------------------------------------------------------

    def cancel(self, batch: Batch) -> None:
        body = Text("Cancel ")
        body.append(printable(batch.id), style="bold")
        body.append(f" ({printable(batch.account)})?\n\nRequests already done are kept and billed; "
                    "the rest will not run.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._cancel(batch), name=f"cancel {batch.account}/{batch.id}", group="cancel",
                                exit_on_error=False, description=f"Cancel {_label(batch)}")

        self.push_screen(ConfirmScreen("Cancel batch?", body, confirm="Cancel batch"), answered)

    async def _cancel(self, batch: Batch) -> None:
        account = self.engine.settings.account(batch.account)
        cancelled = self.engine.costed(await self.engine.client(account).cancel_batch(batch.id))
        await asyncio.to_thread(self.engine.ledger.upsert_batches, [cancelled])
        self.post_message(CancelRequested(cancelled))

    def on_cancel_requested(self, message: CancelRequested) -> None:
        batch = message.batch
        self.notify(f"Cancel requested: now {batch.status.value}", title=_label(batch), markup=False)
        self.apply_batches([batch])
        self.poll_now(batch.account)

    # -- copy and open ----------------------------------------------------------------------

    def copy_id(self, batch: Batch) -> None:
        self.copy_to_clipboard(batch.id)
        self.notify(f"Copied {printable(batch.id)}", markup=False)

    def open_console(self, batch: Batch) -> None:
        # A thread: the client may need the keyring (which can block) and webbrowser may spawn.
        self.run_worker(partial(self._open_console, batch), thread=True, group="console", exit_on_error=False,
                        description=f"Open the console page of {_label(batch)}")

    def _open_console(self, batch: Batch) -> None:
        account = self.engine.settings.account(batch.account)
        url = self.engine.client(account).console_url(batch)
        if url is None:
            self.notify(f"{batch.provider.value} has no console page for this batch", title=_label(batch),
                        markup=False)
            return
        import webbrowser  # only here: not loaded before the first frame

        opened = webbrowser.open(url)
        self.notify(("Opened " if opened else "Could not open a browser for ") + url, title=_label(batch),
                    markup=False, severity="information" if opened else "warning")
