"""The per-batch actions shared by the batches and detail screens: their bindings, when each
applies, and the methods that hand the selected batch to the app's operations.

One predicate, `applies`, decides for the footer (`check_action`), the help screen and the
command palette alike, so the three never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

from batchtui.core.models import Batch, Status

if TYPE_CHECKING:
    from batchtui.ui.app import BatchtuiApp

CANCELLABLE = frozenset({Status.VALIDATING, Status.IN_PROGRESS, Status.FINALIZING})

# action name -> (palette title, palette help). The bindings below carry the keys.
ACTIONS: dict[str, tuple[str, str]] = {
    "fetch": ("Fetch results", "Download the selected batch's results (and error file) to the downloads folder"),
    "retry": ("Retry failed items", "Resend the failed, expired and cancelled requests as a new batch (asks first)"),
    "retry_all": ("Retry failed items, request errors too",
                  "Also resend requests the provider rejected (they fail again unless fixed; asks first)"),
    "cancel_batch": ("Cancel batch", "Ask the provider to cancel the selected batch (asks first)"),
    "copy_id": ("Copy batch id", "Copy the selected batch's id to the clipboard"),
    "open_console": ("Open in the provider's console", "Open the batch's page in the provider's web console"),
}

BATCH_BINDINGS = [
    Binding("f", "fetch", "Fetch", id="batchtui.fetch", tooltip=ACTIONS["fetch"][1]),
    Binding("R", "retry", "Retry", id="batchtui.retry", tooltip=ACTIONS["retry"][1]),
    Binding("E", "retry_all", "Retry all", id="batchtui.retry_all", tooltip=ACTIONS["retry_all"][1], show=False),
    Binding("c", "cancel_batch", "Cancel", id="batchtui.cancel", tooltip=ACTIONS["cancel_batch"][1]),
    Binding("y", "copy_id", "Copy id", id="batchtui.copy_id", tooltip=ACTIONS["copy_id"][1]),
    Binding("o", "open_console", "Console", id="batchtui.open_console", tooltip=ACTIONS["open_console"][1]),
]


def applies(action: str, batch: Batch | None) -> bool:
    if batch is None:
        return False
    counts = batch.counts
    match action:
        case "fetch":
            return bool(batch.result_files)
        case "retry" | "retry_all":
            unfinished = (counts.failed or 0) + (counts.expired or 0) + (counts.cancelled or 0)
            return batch.is_terminal and (unfinished > 0 or batch.status is not Status.COMPLETED)
        case "cancel_batch":
            return batch.status in CANCELLABLE
        case "copy_id" | "open_console":
            return True
    return False


class BatchActions:
    """Mixin for a screen with a selected batch. The screen lists BATCH_BINDINGS in its own
    BINDINGS (Textual merges bindings only from DOMNode classes) and calls `batch_check_action`
    from its `check_action`."""

    app: BatchtuiApp

    def selected_batch(self) -> Batch | None:
        raise NotImplementedError

    def batch_check_action(self, action: str) -> bool | None:
        if action in ACTIONS:
            return applies(action, self.selected_batch())
        return True

    def _run(self, action: str) -> None:
        batch = self.selected_batch()
        if not applies(action, batch):
            return
        assert batch is not None
        operation = {"fetch": self.app.fetch, "retry": self.app.retry, "retry_all": self.app.retry_all,
                     "cancel_batch": self.app.cancel,
                     "copy_id": self.app.copy_id, "open_console": self.app.open_console}[action]
        operation(batch)

    def action_fetch(self) -> None:
        self._run("fetch")

    def action_retry(self) -> None:
        self._run("retry")

    def action_retry_all(self) -> None:
        self._run("retry_all")

    def action_cancel_batch(self) -> None:
        self._run("cancel_batch")

    def action_copy_id(self) -> None:
        self._run("copy_id")

    def action_open_console(self) -> None:
        self._run("open_console")
